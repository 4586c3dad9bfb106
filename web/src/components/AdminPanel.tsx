import { useEffect, useState } from 'preact/hooks';
import type { Chat } from '../chat';
import type { AdminUser, Space } from '../types';

/**
 * The server administration, for a server admin (GET /users/me says `admin`: asked once per
 * user, the login's answer does not say it): find users by
 * name prefix or phone, deactivate and reactivate them, reset a password (the generated one is
 * shown once, to hand over); and every space. Lists are paged with "More". The server decides
 * who may (403 otherwise); this panel is only not shown to others.
 */
export function AdminPanel({ chat }: { chat: Chat }) {
  const [query, setQuery] = useState('');
  const [users, setUsers] = useState<{ items: AdminUser[]; next: string | null } | null>(null);
  const [spaces, setSpaces] = useState<{ items: Space[]; next: string | null } | null>(null);
  const [note, setNote] = useState<{ text: string; error: boolean } | null>(null);
  const [admin, setAdmin] = useState(false);
  const meId = chat.me?.id;
  useEffect(() => {
    setAdmin(false);
    if (!meId) return;
    let live = true;
    chat.api.me().then((u) => { if (live) setAdmin(!!u.admin); }, () => undefined);
    return () => { live = false; };
  }, [meId]);
  const fail = (e: unknown) => setNote({ text: (e as Error).message, error: true });

  const loadUsers = async (after: string | null) => {
    const page = await chat.api.adminUsers(query.trim(), after ?? '0');
    setUsers((old) => ({ items: [...(after && old ? old.items : []), ...page.users], next: page.next_after }));
  };
  const loadSpaces = async (after: string | null) => {
    const page = await chat.api.adminSpaces(after ?? '0');
    setSpaces((old) => ({ items: [...(after && old ? old.items : []), ...page.spaces], next: page.next_after }));
  };
  const setDeactivated = async (u: AdminUser, deactivated: boolean) => {
    await chat.api.adminSetDeactivated(u.id, deactivated);
    setUsers((old) => old && { ...old, items: old.items.map((x) => (x.id === u.id ? { ...x, deactivated } : x)) });
    setNote({ text: `${u.name} ${deactivated ? 'deactivated: every session ended' : 'reactivated'}.`, error: false });
  };
  const reset = async (u: AdminUser) => {
    const r = await chat.api.adminResetPassword(u.id);
    setNote({ text: `New password for ${u.name}: ${r.password}`, error: false });
  };

  if (!admin) return null;
  return (
    <details class="inline-form admin" data-testid="admin"
             onToggle={(e) => { if (e.currentTarget.open && !users) void loadUsers(null).catch(fail); }}>
      <summary>Server admin</summary>
      <form role="search" aria-label="Find users"
            onSubmit={(e) => { e.preventDefault(); setNote(null); void loadUsers(null).catch(fail); }}>
        <label>
          Name or phone
          <input type="search" maxLength={64} value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        </label>
        <button type="submit">Find users</button>
      </form>
      <ul class="list" aria-label="Users">
        {(users?.items ?? []).map((u) => (
          <li key={u.id} class="admin-user" data-admin-user={u.id} data-deactivated={u.deactivated ? 'true' : 'false'}>
            <span class="item-name">{u.name}</span> <code class="hint">{u.phone}</code>{' '}
            <span class="hint">{u.deactivated ? 'deactivated' : 'active'}</span>
            {u.id !== chat.me?.id && (
              <span class="row">
                <button type="button" class="small" aria-label={`${u.deactivated ? 'Reactivate' : 'Deactivate'} ${u.name}`}
                        onClick={() => void setDeactivated(u, !u.deactivated).catch(fail)}>
                  {u.deactivated ? 'Reactivate' : 'Deactivate'}
                </button>
                <button type="button" class="small" aria-label={`Reset the password of ${u.name}`}
                        onClick={() => void reset(u).catch(fail)}>
                  Reset password
                </button>
              </span>
            )}
          </li>
        ))}
        {users && users.items.length === 0 && <li class="hint">Nobody found.</li>}
      </ul>
      {users?.next && (
        <button type="button" class="small" onClick={() => void loadUsers(users.next).catch(fail)}>More users</button>
      )}
      <button type="button" class="small" onClick={() => void loadSpaces(null).catch(fail)}>List spaces</button>
      {spaces && (
        <ul class="list" aria-label="Spaces">
          {spaces.items.map((s) => (
            <li key={s.id} data-admin-space={s.id}>
              <span class="item-name">{s.name}</span> <code class="hint">{s.id}</code>{' '}
              <span class="hint">{s.discoverable ? 'listed' : 'private'}</span>
            </li>
          ))}
          {spaces.items.length === 0 && <li class="hint">No spaces.</li>}
        </ul>
      )}
      {spaces?.next && (
        <button type="button" class="small" onClick={() => void loadSpaces(spaces.next).catch(fail)}>More spaces</button>
      )}
      {note && <p class={note.error ? 'error' : 'hint'} role={note.error ? 'alert' : 'status'}>{note.text}</p>}
    </details>
  );
}
