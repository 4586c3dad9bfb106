/** The red unread dot with its count; nothing when there is nothing unread. */
export function Badge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span class="badge" aria-label={`${count} unread`}>
      {count > 99 ? '99+' : count}
    </span>
  );
}
