import { useState } from 'preact/hooks';
import type { Chat } from '../chat';
import type { AdminUser, Space } from '../types';

/**
 * The server administration, for a server admin (GET /users/me says `admin`, Chat.start asks
 * it: the login's answer does not say it): find users by
 * name prefix or phone, deactivate and reactivate them, reset a password (the generated one is
 * shown once, to hand over), remove them from a space (picked among every space); and every
 * space. Lists are paged with "More". The server decides who may (403 otherwise); this panel
 * is only not shown to others.
 */
export function AdminPanel({ chat }: { chat: Chat }) {
  const [query, setQuery] = useState('');
  const [users, setUsers] = useState<{ items: AdminUser[]; next: string | null } | null>(null);
  const [spaces, setSpaces] = useState<{ items: Space[]; next: string | null } | null>(null);
  const [note, setNote] = useState<{ text: string; error: boolean } | null>(null);
  const [removing, setRemoving] = useState<{ user: string; space: string } | null>(null);
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

  const startRemove = (u: AdminUser) => {
    setRemoving({ user: u.id, space: '' });
    if (!spaces) void loadSpaces(null).catch(fail);
  };
  const removeFromSpace = async (u: AdminUser, spaceId: string) => {
    await chat.api.adminRemoveMember(spaceId, u.id);
    setRemoving(null);
    const name = spaces?.items.find((s) => s.id === spaceId)?.name ?? 'the space';
    setNote({ text: `${u.name} removed from ${name}.`, error: false });
  };

  if (!chat.me?.admin) return null;
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
                <button type="button" class="small" aria-label={`Remove ${u.name} from a space`}
                        onClick={() => startRemove(u)}>
                  Remove from space…
                </button>
              </span>
            )}
            {removing?.user === u.id && (
              <form aria-label={`Remove ${u.name} from a space`}
                    onSubmit={(e) => { e.preventDefault(); setNote(null); void removeFromSpace(u, removing.space).catch(fail); }}>
                <label>
                  Space
                  <select required value={removing.space} data-testid="admin-remove-space"
                          onChange={(e) => setRemoving({ user: u.id, space: e.currentTarget.value })}>
                    <option value="">Pick a space</option>
                    {(spaces?.items ?? []).map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
                  </select>
                </label>
                <button type="submit" class="small danger">Remove</button>
                <button type="button" class="small" onClick={() => setRemoving(null)}>Cancel</button>
              </form>
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
