/** The red unread dot with its count; nothing when there is nothing unread; grey when muted. */
export function Badge({ count, muted }: { count: number; muted?: boolean }) {
  if (count <= 0) return null;
  return (
    <span class={muted ? 'badge muted' : 'badge'} aria-label={`${count} unread${muted ? ', muted' : ''}`}>
      {count > 99 ? '99+' : count}
    </span>
  );
}

/** The @ badge: messages after the read marker that mention the user. */
export function MentionBadge({ count, muted }: { count: number; muted?: boolean }) {
  if (count <= 0) return null;
  return (
    <span class={`badge mention-badge${muted ? ' muted' : ''}`} aria-label={`${count} mention${count === 1 ? '' : 's'}`}>
      @{count > 99 ? '99+' : count}
    </span>
  );
}
