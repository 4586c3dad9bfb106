import { useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { manages, mayChangeChannel, mayRemove } from '../model/moderation';
import type { Channel, Member } from '../types';

/**
 * The open channel's settings, under the conversation's header (so on a phone too). Its
 * creator and the space's admins and owner rename it, archive or unarchive it and set "history
 * from joining"; admins and the owner delete it (after a confirmation). Its members, with Remove where this user's role in the space allows. The
 * server decides; its refusal is shown.
 */
export function ChannelSettings({ chat, channel }: { chat: Chat; channel: Channel }) {
  const [members, setMembers] = useState<Member[] | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [name, setName] = useState<string | null>(null);
  const fail = (e: unknown) => chat.setNotice((e as Error).message);
  const mine = chat.spaceRole(channel.space_id);
  const load = () => Promise.all([chat.channelMembers(channel.id), chat.members(channel.space_id)])
    .then(([list, space]) => {
      const roles = new Map(space.map((m) => [m.user_id, m.role ?? 'member']));
      setMembers(list.map((m) => ({ ...m, role: roles.get(m.user_id) ?? 'member' })));
    }, fail);
  const change = mayChangeChannel(mine, channel.owner_id, chat.me?.id);
  const update = (settings: { name?: string; archived?: boolean; history_from_join?: boolean }) =>
    chat.updateChannel(channel.id, settings).catch(fail);
  return (
    <details class="channel-settings" data-testid="channel-settings"
             onToggle={(e) => { if (e.currentTarget.open) void load(); }}>
      <summary>Channel settings</summary>
      {change && (
        <>
          <form aria-label="Rename the channel"
                onSubmit={(e) => { e.preventDefault(); if (name !== null) void update({ name: name.trim() }).then(() => setName(null)); }}>
            <label>
              Channel name
              <input required maxLength={64} data-testid="channel-name-input" value={name ?? channel.name}
                     onInput={(e) => setName(e.currentTarget.value)} />
            </label>
            <button type="submit" class="small" disabled={name === null}>Rename</button>
          </form>
          <label class="check">
            <input type="checkbox" checked={!!channel.history_from_join} data-testid="history-from-join"
                   onChange={(e) => void update({ history_from_join: e.currentTarget.checked })} />
            New members read history from when they join
          </label>
        </>
      )}
      <div class="row">
        {change && (
          <button type="button" class="small" data-testid="archive"
                  onClick={() => void update({ archived: !channel.archived })}>
            {channel.archived ? 'Unarchive' : 'Archive'}
          </button>
        )}
        {manages(mine) && (!confirming ? (
          <button type="button" class="small danger" onClick={() => setConfirming(true)}>Delete channel</button>
        ) : (
          <span role="group" aria-label="Confirm delete">
            <span>Delete #{channel.name} and its history for everyone?</span>{' '}
            <button type="button" class="small danger" data-testid="confirm-delete"
                    onClick={() => void chat.deleteChannel(channel.id).catch((e) => { setConfirming(false); fail(e); })}>
              Delete
            </button>
            <button type="button" class="small" onClick={() => setConfirming(false)}>Cancel</button>
          </span>
        ))}
      </div>
      <ul class="list" aria-label="Channel members">
        {(members ?? []).map((m) => (
          <li key={m.user_id} class="member" data-channel-member={m.user_id}>
            <span class="item-name">{m.name}</span>
            {mayRemove(mine, m.role, m.user_id === chat.me?.id) && (
              <button type="button" class="small" aria-label={`Remove ${m.name} from the channel`}
                      onClick={() => void chat.removeFromChannel(channel.id, m.user_id).then(load, fail)}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
    </details>
  );
}
