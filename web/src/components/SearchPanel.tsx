import { useEffect, useRef, useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { highlight } from '../text/snippet';
import { clockTime, dayLabel } from '../text/time';
import type { SearchHit } from '../types';

const DEBOUNCE_MS = 250;

/**
 * "/" (or the sidebar's Search button): full-text search over every conversation the user may
 * read (GET /api/v1/search). Results newest first with sender, conversation, time and the
 * matched words marked; Enter or a click jumps to the message in its conversation.
 */
export function SearchPanel({ chat, close }: { chat: Chat; close: () => void }) {
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<SearchHit[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [indexing, setIndexing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [at, setAt] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const asked = useRef(0); // answers to older queries are dropped
  useEffect(() => input.current?.focus(), []);

  const run = async (query: string, cursor?: string) => {
    const n = ++asked.current;
    setBusy(true);
    try {
      const r = await chat.api.search(query, { cursor });
      if (n !== asked.current) return;
      setHits((old) => (cursor ? old.concat(r.messages) : r.messages));
      setNext(r.next_cursor);
      setIndexing(r.indexing);
      setError(null);
      if (!cursor) setAt(0);
    } catch (e) {
      if (n !== asked.current) return;
      setError(e instanceof Error ? e.message : String(e));
      if (!cursor) setHits([]);
      setNext(null);
    } finally {
      if (n === asked.current) setBusy(false);
    }
  };

  useEffect(() => {
    const query = q.trim();
    if (!query) {
      asked.current++;
      setHits([]);
      setNext(null);
      setError(null);
      return;
    }
    const t = window.setTimeout(() => void run(query), DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [q]);

  const sel = Math.min(at, Math.max(0, hits.length - 1));
  const open = (h: SearchHit) => {
    close();
    chat.jumpTo(h.conversation, h.seq);
  };

  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && close()}>
      <div class="switcher search" role="dialog" aria-modal="true" aria-label="Search messages">
        <input ref={input} value={q} type="search" placeholder="Search messages…" aria-label="Search messages"
               role="combobox" aria-expanded="true" aria-controls="search-list" aria-autocomplete="list"
               aria-activedescendant={hits[sel] ? `sr-${sel}` : undefined}
               onInput={(e) => setQ(e.currentTarget.value)}
               onKeyDown={(e) => {
                 if (e.key === 'ArrowDown') { e.preventDefault(); setAt((sel + 1) % Math.max(1, hits.length)); }
                 else if (e.key === 'ArrowUp') { e.preventDefault(); setAt((sel - 1 + hits.length) % Math.max(1, hits.length)); }
                 else if (e.key === 'Enter' && hits[sel]) { e.preventDefault(); open(hits[sel]); }
                 else if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(); }
               }} />
        {error && <p class="error" role="alert">{error}</p>}
        {indexing && <p class="hint">Older messages are still being indexed; some may be missing.</p>}
        <ul id="search-list" role="listbox" aria-label="Search results" aria-busy={busy}>
          {hits.map((h, i) => (
            <li key={h.id} id={`sr-${i}`} role="option" aria-selected={i === sel}
                class={`search-hit${i === sel ? ' selected' : ''}`} onClick={() => open(h)}>
              <div class="search-meta">
                <span class="search-sender">{chat.userName(h.sender)}</span>
                <span class="search-conv">{chat.titleOf(h.conversation)}</span>
                <time dateTime={new Date(h.created_at).toISOString()}>
                  {dayLabel(h.created_at)} {clockTime(h.created_at)}
                </time>
              </div>
              <p class="search-snippet">
                {highlight(h.snippet, h.marks).map((p) => (p.hit ? <mark>{p.text}</mark> : p.text))}
              </p>
            </li>
          ))}
          {q.trim() && !busy && !error && hits.length === 0 && (
            <li class="hint" role="option" aria-selected="false">No message matches.</li>
          )}
        </ul>
        {next && (
          <button type="button" class="link" disabled={busy} onClick={() => void run(q.trim(), next)}>
            More results
          </button>
        )}
      </div>
    </div>
  );
}
