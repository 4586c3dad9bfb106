// The directory panels, loaded on first use (a chunk of their own, see Sidebar's usePanels):
// People (the server's user directory, GET /users?q=) and Browse (the selected space's public
// channels this user has not joined, and the discoverable spaces they are not in).
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { Chat } from '../chat';
import type { Space, User } from '../types';
import { ListAvatar } from './ListAvatar';

const DEBOUNCE_MS = 250;

/** A modal panel over the page: Esc (wherever the focus went) or a click outside closes it. */
function Panel({ label, close, children }: { label: string; close: () => void; children: ComponentChildren }) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') close();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [close]);
  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && close()}>
      <div class="switcher directory" role="dialog" aria-modal="true" aria-label={label}>
        <div class="panel-head">
          <h2>{label}</h2>
          <button type="button" class="small" onClick={close}>Close</button>
        </div>
        {children}
      </div>
    </div>
  );
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * People: a name prefix searched on the server among the people this user may message, by name,
 * a page at a time; "Message" opens the DM.
 */
export function PeoplePanel({ chat, close }: { chat: Chat; close: () => void }) {
  const [q, setQ] = useState('');
  const [users, setUsers] = useState<User[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const asked = useRef(0); // answers to older queries are dropped
  useEffect(() => input.current?.focus(), []);

  const run = async (query: string, after = '') => {
    const n = ++asked.current;
    setBusy(true);
    try {
      const page = await chat.api.directory(query, after);
      if (n !== asked.current) return;
      setUsers((old) => (after && old ? old.concat(page.users) : page.users));
      setNext(page.next_after);
      setError(null);
    } catch (e) {
      if (n !== asked.current) return;
      setError(message(e));
      setNext(null);
    } finally {
      if (n === asked.current) setBusy(false);
    }
  };

  useEffect(() => {
    const t = window.setTimeout(() => void run(q.trim()), q ? DEBOUNCE_MS : 0);
    return () => clearTimeout(t);
  }, [q]);

  return (
    <Panel label="People" close={close}>
      <input ref={input} value={q} type="search" placeholder="Search people by name…" aria-label="Search people"
             data-testid="people-q" maxLength={64} onInput={(e) => setQ(e.currentTarget.value)} />
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="directory-list" aria-label="People found" aria-busy={busy} data-testid="people">
        {(users ?? []).map((u) => (
          <li key={u.id} class="directory-row" data-user={u.id}>
            <ListAvatar chat={chat} field={u.avatar} initialsOf={u} />
            <span class="item-name">{u.name}</span>
            <button type="button" class="small" aria-label={`Message ${u.name}`}
                    onClick={() => {
                      close();
                      chat.openDm(u);
                    }}>
              Message
            </button>
          </li>
        ))}
        {users && users.length === 0 && !busy && !error && (
          <li class="hint">{q.trim() ? `Nobody found for “${q.trim()}”.` : 'Nobody yet: people who share a space with you show here.'}</li>
        )}
      </ul>
      {next && (
        <button type="button" class="link" disabled={busy} onClick={() => void run(q.trim(), next)}>
          More people
        </button>
      )}
    </Panel>
  );
}

/**
 * Browse: the selected space's public channels this user has not joined (from the channel list
 * the sidebar holds), and the discoverable spaces of the server they are not in, a page at a time.
 */
export function BrowsePanel({ chat, close }: { chat: Chat; close: () => void }) {
  const space = chat.spaces.find((s) => s.id === chat.selectedSpace);
  const channels = (space ? chat.channels[space.id] ?? [] : []).filter(
    (ch) => !ch.archived && !chat.convs.get(`channel:${ch.id}`)?.joined,
  );
  const [spaces, setSpaces] = useState<Space[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const load = async (after = '') => {
    setBusy(true);
    try {
      const page = await chat.discoverable(after);
      setSpaces((old) => (after && old ? old.concat(page.spaces) : page.spaces));
      setNext(page.next);
    } catch (e) {
      chat.setNotice(message(e));
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void load(), []);
  const fail = (e: unknown) => chat.setNotice(message(e));

  return (
    <Panel label="Browse channels and spaces" close={close}>
      {space && (
        <section aria-labelledby="browse-channels-h">
          <h3 id="browse-channels-h">Channels in {space.name} you have not joined</h3>
          <ul class="directory-list" data-testid="browse-channels">
            {channels.map((ch) => (
              <li key={ch.id} class="directory-row" data-channel={ch.id}>
                <span class="item-name">{ch.private ? '🔒' : '#'} {ch.name}</span>
                <button type="button" class="small" aria-label={`Join channel ${ch.name}`}
                        onClick={() => chat.joinChannel(ch.id).catch(fail)}>
                  Join
                </button>
              </li>
            ))}
            {channels.length === 0 && <li class="hint">You are in every channel of this space.</li>}
          </ul>
        </section>
      )}
      <section aria-labelledby="browse-spaces-h">
        <h3 id="browse-spaces-h">Spaces anyone may join</h3>
        <ul class="directory-list" aria-busy={busy} data-testid="browse-spaces">
          {(spaces ?? []).map((s) => (
            <li key={s.id} class="directory-row" data-space-row={s.id}>
              <ListAvatar chat={chat} field={s.avatar} initialsOf={s} />
              <span class="item-name">{s.name}</span>
              <button type="button" class="small" aria-label={`Join space ${s.name}`}
                      onClick={() => chat.joinSpace(s.id).then(
                        () => setSpaces((old) => (old ?? []).filter((x) => x.id !== s.id)), fail)}>
                Join
              </button>
            </li>
          ))}
          {spaces && spaces.length === 0 && !busy && <li class="hint">No other space is listed.</li>}
        </ul>
        {next && (
          <button type="button" class="link" disabled={busy} onClick={() => void load(next)}>
            More spaces
          </button>
        )}
      </section>
    </Panel>
  );
}
