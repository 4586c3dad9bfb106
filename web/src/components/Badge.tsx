/** The red unread dot with its count; nothing when there is nothing unread. */
export function Badge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span class="badge" aria-label={`${count} unread`}>
      {count > 99 ? '99+' : count}
    </span>
  );
}

/** The @ badge: messages after the read marker that mention the user. */
export function MentionBadge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span class="badge mention-badge" aria-label={`${count} mention${count === 1 ? '' : 's'}`}>
      @{count > 99 ? '99+' : count}
    </span>
  );
}
