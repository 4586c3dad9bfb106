import type { Chat } from '../chat';
import { isAvatarUrl } from '../api';
import { avatarColour, initials } from '../text/avatar';
import { useObjectUrl } from './FileView';

/**
 * An uploaded avatar in a list; without one, the initials of `initialsOf` on its stable colour
 * (the space switcher), or nothing (the list stays text).
 */
export function ListAvatar({ chat, field, initialsOf }: { chat: Chat; field: string | undefined; initialsOf?: { id: string; name: string } }) {
  const { url } = useObjectUrl(chat, isAvatarUrl(field) ? field : undefined);
  if (url) return <img class="item-avatar" src={url} alt="" aria-hidden="true" />;
  if (!initialsOf) return null;
  return (
    <span class="item-avatar initials" aria-hidden="true" data-initials={initialsOf.id}
          style={{ background: avatarColour(initialsOf.id) }}>
      {initials(initialsOf.name)}
    </span>
  );
}
