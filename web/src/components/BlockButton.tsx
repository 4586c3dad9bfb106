import type { Chat } from '../chat';

/** Block or unblock a user (a DM's header, the member list): a block refuses DMs both ways (the server's refusal shown). */
export function BlockButton({ chat, user, name }: { chat: Chat; user: string; name?: string }) {
  if (!chat.blocks.loaded || user === chat.me?.id) return null;
  const blocked = chat.blocks.has(user);
  const who = name ?? chat.userName(user);
  return (
    <button type="button" class="small" data-testid="block" data-blocked={blocked ? 'true' : 'false'}
            aria-label={`${blocked ? 'Unblock' : 'Block'} ${who}`}
            onClick={() => {
              if (blocked || confirm(`Block ${who}? Neither of you can send the other direct messages until you unblock.`)) {
                chat.setBlocked(user, !blocked).catch((e: Error) => chat.setNotice(e.message));
              }
            }}>
      {blocked ? 'Unblock' : 'Block'}
    </button>
  );
}
