import { useEffect, useRef, useState } from 'preact/hooks';
import { unread, type Chat } from '../chat';
import { matchRank } from '../model/finder';
import { Badge } from './Badge';

const SHOWN = 12;

/** Ctrl/Cmd+K: type part of a conversation's name, Enter opens the chosen one, Esc closes. */
export function QuickSwitcher({ chat, close }: { chat: Chat; close: () => void }) {
  const [q, setQ] = useState('');
  const [at, setAt] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  const query = q.trim().toLowerCase();
  const items = chat
    .allConvs()
    .map((c) => ({ c, label: chat.convTitle(c) }))
    .map((x) => ({ ...x, r: query ? matchRank(x.label, query) : 0 }))
    .filter((x) => x.r >= 0)
    .sort((a, b) => a.r - b.r || unread(b.c) - unread(a.c) || b.c.lastAt - a.c.lastAt)
    .slice(0, SHOWN);
  const sel = Math.min(at, Math.max(0, items.length - 1));

  const open = (key: string) => {
    close();
    chat.openConv(key);
  };

  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && close()}>
      <div class="switcher" role="dialog" aria-modal="true" aria-label="Switch conversation">
        <input ref={input} value={q} placeholder="Jump to a conversation…" aria-label="Conversation name"
               role="combobox" aria-expanded="true" aria-controls="switcher-list" aria-autocomplete="list"
               aria-activedescendant={items[sel] ? `sw-${sel}` : undefined}
               onInput={(e) => { setQ(e.currentTarget.value); setAt(0); }}
               onKeyDown={(e) => {
                 if (e.key === 'ArrowDown') { e.preventDefault(); setAt((sel + 1) % Math.max(1, items.length)); }
                 else if (e.key === 'ArrowUp') { e.preventDefault(); setAt((sel - 1 + items.length) % Math.max(1, items.length)); }
                 else if (e.key === 'Enter' && items[sel]) { e.preventDefault(); open(items[sel].c.key); }
                 else if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(); }
               }} />
        <ul id="switcher-list" role="listbox" aria-label="Conversations">
          {items.map((x, i) => (
            <li key={x.c.key} id={`sw-${i}`} role="option" aria-selected={i === sel}
                class={i === sel ? 'selected' : ''} onClick={() => open(x.c.key)}>
              <span class="item-name">{x.c.kind === 'channel' ? `# ${x.label}` : x.label}</span>
              <Badge count={unread(x.c)} />
            </li>
          ))}
          {items.length === 0 && <li class="hint" role="option" aria-selected="false">No conversation matches.</li>}
        </ul>
      </div>
    </div>
  );
}
