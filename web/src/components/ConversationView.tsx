import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { findById, unread, type Chat, type Conv, type Msg, type Pending } from '../chat';
import { lazy, pure } from '../hooks';
import { lowerBound } from '../model/conversation';
import { complete, mentionQuery, suggestions, type MentionQuery, type Suggestion } from '../model/mention';
import { UNREAD_CONTEXT } from '../model/history';
import { MAX_BODY_BYTES } from '../model/outbox';
import { avatarColour, initials } from '../text/avatar';
import { layout } from '../text/layout';
import { clockTime, dayLabel, hoverTitle } from '../text/time';
import { isAvatarUrl } from '../api';
import { BlockButton } from './BlockButton';
import { FileView, formatSize, useObjectUrl } from './FileView';
import { RichText, mentioned, type Names } from './RichText';

const ChannelSettings = lazy(() => import('./ChannelSettings').then((m) => m.ChannelSettings));

/** The reactions the message menu offers. */
const EMOJI = ['👍', '❤️', '😂', '🎉', '👀', '🙏'];

/** Rows rendered while following the newest messages, at most otherwise, and the step. */
const FOLLOW_ROWS = 100;
const MAX_ROWS = 250;
const STEP = 75;
/** Scrolling this near an edge moves the window of rendered rows (or pages history in). */
const EDGE_PX = 300;
const BOTTOM_SLACK_PX = 40;

export function ConversationView({ chat }: { chat: Chat }) {
  const conv = chat.open ? chat.convs.get(chat.open) : undefined;
  if (!conv) {
    const empty = chat.spaces.length === 0 && chat.dms().length === 0;
    return (
      <main class="pane empty" aria-label="Conversation">
        {empty ? (
          <p>
            Welcome! Create a space for your team in the sidebar and invite people with a link, or
            paste an invite link a teammate sent you into <strong>Join a space</strong>. Or start a
            direct message with <strong>New message</strong>.
          </p>
        ) : (
          <p>Pick a channel or a direct message, or start a new one. Ctrl+K finds any conversation; / searches messages.</p>
        )}
      </main>
    );
  }
  const title = chat.convTitle(conv);
  // A jump to a message (a search hit) starts a new message list there.
  const focusToken = chat.focus?.key === conv.key ? chat.focus.token : 0;
  const space = conv.spaceId ? chat.spaces.find((s) => s.id === conv.spaceId) : undefined;
  const channel = conv.kind === 'channel' ? chat.channel(conv.peerOrChannel) : undefined;
  // Files dropped anywhere on the conversation are sent to it.
  const onDrop = (e: DragEvent) => {
    const files = e.dataTransfer?.files;
    if (!conv.joined || !files?.length) return;
    e.preventDefault();
    for (const f of Array.from(files)) void chat.sendFile(conv.key, f).then((err) => err && chat.setNotice(err));
  };
  return (
    <main class="pane" aria-labelledby="conv-title"
          onDragOver={(e) => { if (conv.joined && e.dataTransfer?.types.includes('Files')) e.preventDefault(); }}
          onDrop={onDrop}>
      <header class="pane-header">
        <button type="button" class="back" onClick={() => chat.openConv(null)}>
          <span aria-hidden="true">←</span> Conversations
        </button>
        <h1 id="conv-title">{conv.kind === 'channel' ? `# ${title}` : title}</h1>
        {space && <span class="hint">{space.name}</span>}
        <MuteButton chat={chat} conv={conv} />
        {conv.kind === 'dm' && <BlockButton chat={chat} user={conv.peerOrChannel} />}
      </header>
      {conv.joined ? (
        <>
          {channel && <ChannelSettings key={channel.id} chat={chat} channel={channel} />}
          <MessageList key={`${conv.key}#${focusToken}`} chat={chat} conv={conv} />
          <TypingLine names={chat.typers(conv)} />
          {channel?.archived ? (
            <p class="archived-note" role="status" data-testid="archived">
              This channel is archived: its history stays, nothing new can be sent.
            </p>
          ) : (
            <Composer key={`c-${conv.key}`} chat={chat} conv={conv} title={title} />
          )}
        </>
      ) : (
        <div class="not-member">
          <p>You are not a member of this channel.</p>
          <button type="button" class="primary"
                  onClick={() => chat.joinChannel(conv.peerOrChannel).catch((e) => chat.setNotice(e.message))}>
            Join channel
          </button>
        </div>
      )}
    </main>
  );
}

/** Where the view stood at the last scroll or render: kept still across re-renders. */
interface Snapshot {
  anchorSeq: number; // the first message row visible
  anchorOffset: number; // its top relative to the viewport's top
  atBottom: boolean;
}

function isAtBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= BOTTOM_SLACK_PX;
}

/** The index of the first message row whose bottom is below `y` (count if none). */
function rowIndexAt(rows: HTMLCollection, count: number, y: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const el = rows[mid] as HTMLElement;
    if (el.offsetTop + el.offsetHeight <= y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Messages, newest at the bottom. Only a window of them is rendered (at most MAX_ROWS, the
 * newest FOLLOW_ROWS while following live messages); scrolling near an edge moves the window,
 * past the oldest held message pages older history in. The first message row in view stays
 * where it is when rows come or go above it.
 */
function MessageList({ chat, conv }: { chat: Chat; conv: Conv }) {
  const ref = useRef<HTMLDivElement>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const snap = useRef<Snapshot | null>(null);
  // The first unread message when the conversation was opened: the "new messages" line.
  const [firstUnread] = useState(() => (unread(conv) > 0 ? conv.readSeq + 1 : 0));
  // A message to bring into view and mark (chat.jumpTo: a search hit), fixed at mount.
  const [focusSeq] = useState(() => (chat.focus?.key === conv.key ? chat.focus.seq : 0));
  // The seq the window starts at; null follows the newest messages.
  const [lo, setLo] = useState<number | null>(() =>
    focusSeq ? Math.max(1, focusSeq - UNREAD_CONTEXT) : firstUnread ? firstUnread - UNREAD_CONTEXT : null,
  );
  const jumpTo = useRef<number | 'bottom' | { focus: number } | null>(
    focusSeq ? { focus: focusSeq } : firstUnread || null,
  );
  const [atBottom, setAtBottom] = useState(true);
  const [unreadAbove, setUnreadAbove] = useState(false);
  const pending = chat.pendingOf(conv.key);
  const msgs = conv.msgs;
  const n = msgs.length;
  const start = lo === null ? Math.max(0, n - FOLLOW_ROWS) : Math.min(lowerBound(msgs, lo), Math.max(0, n - 1));
  const end = lo === null ? n : Math.min(n, start + MAX_ROWS);
  const rows = layout(msgs, start, end, firstUnread);
  const me = chat.me?.id;
  // A space's owner and admins delete others' messages in its channels, a server admin anywhere.
  const moderator = chat.moderates(conv) || !!chat.me?.admin;
  // DMs: our newest message the peer has read carries the "Seen" mark.
  let seenSeq = 0;
  if (conv.kind === 'dm') {
    for (let i = n - 1; i >= 0 && !seenSeq; i--) {
      if (msgs[i].from === me && msgs[i].seq <= conv.peerReadSeq) seenSeq = msgs[i].seq;
    }
  }
  const names = (body: string): Names | undefined => {
    const ids = mentioned(body);
    if (!ids.length && !body.includes('<!')) return undefined;
    const out: Names = {};
    for (const id of ids) out[id] = chat.userName(id);
    return out;
  };
  const quote = (m: Msg): string | undefined => {
    if (!m.replyTo) return undefined;
    // Not among the loaded messages: fetched by id (shown once it arrives).
    const o = findById(conv, m.replyTo) ?? chat.quotedMessage(m.replyTo);
    if (o === undefined) return 'an earlier message';
    if (o === null) return 'a message you cannot see';
    return o.deleted ? 'deleted' : `${chat.userName(o.from)}: ${o.body.slice(0, 120)}`;
  };

  const record = (el: HTMLElement) => {
    const list = listRef.current!;
    const i = rowIndexAt(list.children, end - start, el.scrollTop);
    const first = i < end - start ? (list.children[i] as HTMLElement) : null;
    snap.current = {
      anchorSeq: first ? Number(first.dataset.seq) : -1,
      anchorOffset: first ? first.offsetTop - el.scrollTop : 0,
      atBottom: isAtBottom(el),
    };
    const divider = list.querySelector<HTMLElement>('.unread-sep')?.parentElement; // its row
    const above = firstUnread > 0 && (divider ? divider.offsetTop < el.scrollTop : n > 0 && firstUnread < msgs[start].seq);
    if (above !== unreadAbove) setUnreadAbove(above);
  };

  /** The read marker follows the newest message row the user has seen. */
  const markSeen = (el: HTMLElement) => {
    if (!conv.loaded || end === start) return;
    // Rows from `below` on reach past the bottom edge: the one before it was seen whole.
    const below = rowIndexAt(listRef.current!.children, end - start, el.scrollTop + el.clientHeight + 1);
    const seen = isAtBottom(el) && end === n ? msgs[n - 1].seq : below > 0 ? msgs[start + below - 1].seq : 0;
    if (seen > conv.readSeq) chat.markRead(conv.key, seen);
  };

  // Before paint: jump where asked, stick to the bottom, or keep the first row in view still.
  useLayoutEffect(() => {
    const el = ref.current!;
    const s = snap.current;
    const target = jumpTo.current;
    if (target === 'bottom') {
      el.scrollTop = el.scrollHeight;
      jumpTo.current = null;
    } else if (target !== null && typeof target === 'object') {
      // Waits for the page around the message; then centres it and marks it for a moment.
      const row = listRef.current!.querySelector<HTMLElement>(`[data-seq="${target.focus}"]`);
      if (row) {
        el.scrollTop = Math.max(0, row.offsetTop - (el.clientHeight - row.offsetHeight) / 2);
        row.classList.add('focused');
        row.setAttribute('aria-current', 'true');
        jumpTo.current = null;
      }
    } else if (typeof target === 'number') {
      const row = listRef.current!.querySelector<HTMLElement>('.unread-sep')?.parentElement;
      if (row) {
        el.scrollTop = row.offsetTop - 8;
        jumpTo.current = null;
      } else if (conv.loaded && (n === 0 || msgs[n - 1].seq < target)) {
        jumpTo.current = null; // nothing unread is held after all
        el.scrollTop = el.scrollHeight;
      }
    } else if (!s || (s.atBottom && lo === null)) {
      el.scrollTop = el.scrollHeight;
    } else if (s.anchorSeq >= 0) {
      const a = listRef.current!.querySelector<HTMLElement>(`[data-seq="${s.anchorSeq}"]`);
      if (a) el.scrollTop = a.offsetTop - s.anchorOffset;
    }
    record(el);
    if (snap.current!.atBottom !== atBottom) setAtBottom(snap.current!.atBottom);
    if (conv.loaded && conv.hasOlder && start === 0 && el.scrollHeight <= el.clientHeight + EDGE_PX) {
      void chat.loadOlder(conv.key);
    }
  });

  // Seen: move the read marker (clears the red dot everywhere). The chat checks visibility.
  useEffect(() => markSeen(ref.current!));

  const onScroll = () => {
    const el = ref.current!;
    record(el);
    const s = snap.current!;
    if (s.atBottom !== atBottom) setAtBottom(s.atBottom);
    if (el.scrollTop < EDGE_PX) {
      if (start > 0) setLo(msgs[Math.max(0, start - STEP)].seq);
      else if (conv.hasOlder) {
        setLo(0); // the window sticks to the oldest held message while older pages come in
        void chat.loadOlder(conv.key);
      }
    } else if (end < n && el.scrollHeight - el.scrollTop - el.clientHeight < EDGE_PX) {
      setLo(msgs[Math.min(n - 1, start + STEP)].seq);
    } else if (s.atBottom && end === n) {
      if (lo !== null) setLo(null);
    } else if (!s.atBottom && lo === null && n > 0) {
      setLo(msgs[start].seq); // reading above: new messages must not move the window
    }
    markSeen(el);
  };

  const jumpLatest = () => {
    jumpTo.current = 'bottom';
    snap.current = null;
    setLo(null);
    setAtBottom(true);
  };

  const jumpUnread = () => {
    jumpTo.current = firstUnread;
    setLo(firstUnread - UNREAD_CONTEXT);
    setUnreadAbove(false);
  };

  const newer = unread(conv);
  const showLatest = !atBottom || end < n;
  return (
    <div class="messages-wrap">
      {unreadAbove && (
        <button type="button" class="jump jump-unread" onClick={jumpUnread}>
          <span aria-hidden="true">↑</span> Jump to first unread
        </button>
      )}
      <div class="messages" ref={ref} onScroll={onScroll} tabIndex={0}
           role="log" aria-label="Messages" aria-live="polite" aria-relevant="additions">
        <div class="history-edge">
          {!conv.loaded ? (
            <span>Loading…</span>
          ) : start > 0 ? (
            <span>…</span>
          ) : conv.hasOlder ? (
            <button type="button" class="link" disabled={conv.loadingOlder}
                    onClick={() => { setLo(0); void chat.loadOlder(conv.key); }}>
              {conv.loadingOlder ? 'Loading older messages…' : 'Load older messages'}
            </button>
          ) : (
            <span>This is the start of the conversation.</span>
          )}
        </div>
        <ol class="msg-list" ref={listRef} onMouseOver={titleOnHover}>
          {rows.map((r) => (
            <Row key={r.m.seq} m={r.m} head={r.head} day={r.day} unread={r.unread}
                 name={chat.userName(r.m.from)} mine={r.m.from === me} me={me ?? ''} chat={chat}
                 moderator={moderator}
                 names={names(r.m.body)} quote={quote(r.m)} editing={chat.editing === r.m.seq}
                 seen={r.m.seq === seenSeq} avatar={chat.userAvatar(r.m.from)} />
          ))}
          {end === n && pending.map((p) => <PendingItem key={p.cid} chat={chat} p={p} />)}
        </ol>
      </div>
      {showLatest && (
        <button type="button" class="jump" onClick={jumpLatest}>
          {newer > 0 ? `${newer} new message${newer === 1 ? '' : 's'} ↓` : 'Jump to latest ↓'}
        </button>
      )}
    </div>
  );
}

/** The user's uploaded avatar (fetched with the token), else their initials on their colour. */
export function Avatar({ chat, id, name }: { chat: Chat; id: string; name: string }) {
  const field = chat.userAvatar(id);
  const { url } = useObjectUrl(chat, isAvatarUrl(field) ? field : undefined);
  if (url) return <img class="avatar" src={url} alt="" aria-hidden="true" data-user={id} />;
  return (
    <span class="avatar" aria-hidden="true" style={{ background: avatarColour(id) }}>
      {initials(name)}
    </span>
  );
}

interface RowProps {
  m: Msg;
  head: boolean;
  day: boolean;
  unread: boolean;
  name: string;
  mine: boolean;
  /** This user may delete others' messages here (a space owner or admin, a server admin). */
  moderator: boolean;
  me: string;
  chat: Chat;
  /** Names of the users the body mentions. */
  names?: Names;
  /** A reply: the quoted original ("deleted" when gone). */
  quote?: string;
  editing: boolean;
  /** DMs: the peer read up to this message. */
  seen: boolean;
  /** The author's avatar field: a row re-renders when it changes. */
  avatar: string;
}

function TypingLine({ names }: { names: string[] }) {
  const text = !names.length
    ? ''
    : names.length === 1
      ? `${names[0]} is typing…`
      : names.length === 2
        ? `${names[0]} and ${names[1]} are typing…`
        : 'Several people are typing…';
  return <div class="typing-line" aria-live="polite">{text}</div>;
}

/** The inline editor of one of our messages: Enter saves, Escape cancels. */
function EditBox({ chat, m }: { chat: Chat; m: Msg }) {
  const ref = useRef<HTMLTextAreaElement>(null);
  // Before paint: focus and caret set before anything can be typed into it.
  useLayoutEffect(() => {
    const el = ref.current!;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);
  const close = () => {
    chat.setEditing(null);
    document.getElementById('composer-input')?.focus();
  };
  return (
    <textarea ref={ref} class="edit-box" aria-label="Edit message" defaultValue={m.body}
              onKeyDown={(e) => {
                if (e.key === 'Escape') {
                  e.preventDefault();
                  e.stopPropagation();
                  close();
                } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                  e.preventDefault();
                  const body = e.currentTarget.value;
                  if (!body.trim()) return;
                  if (body === m.body || !chat.edit(m.id, body)) close();
                }
              }} />
  );
}

/**
 * The hover title of a message time (or "(edited)"): the absolute and the relative time, made
 * when the pointer comes to it (one handler on the list), so a render formats no date and the
 * relative form is right however long the row has been shown.
 */
function titleOnHover(e: Event): void {
  const t = e.target as Element | null;
  if (t?.tagName !== 'TIME') return;
  const ms = Date.parse((t as HTMLTimeElement).dateTime);
  if (!Number.isNaN(ms)) (t as HTMLElement).title = hoverTitle(ms);
}

/** Mute or unmute the open conversation (this device): unread still counts, greyed, no alerts. */
function MuteButton({ chat, conv }: { chat: Chat; conv: Conv }) {
  const muted = chat.prefs.muted(conv.key);
  return (
    <button type="button" class="small mute" data-testid="mute"
            title={muted ? 'Muted: no sound or notification; unread shown in grey' : 'Mute: no sound or notification'}
            onClick={() => chat.setMuted(conv.key, !muted)}>
      {muted ? 'Unmute' : 'Mute'}
    </button>
  );
}

/** How long a finger rests on a message before its menu opens. */
const LONG_PRESS_MS = 500;

/**
 * A long press with a finger (no hover on touch screens): `toggle` after LONG_PRESS_MS without
 * the finger moving or lifting. Browsers that turn a long press into `contextmenu` (Chrome on
 * Android, sometimes before LONG_PRESS_MS) fire both; `onContextMenu` answers one of the two.
 */
function useLongPress(toggle: () => void) {
  const timer = useRef<number | undefined>(undefined);
  const origin = useRef({ x: 0, y: 0 });
  const fired = useRef(false);
  const held = useRef(false); // this press lasted long enough
  const liftedAt = useRef(0); // when the finger of a long press left: a click right after is not a tap
  const cancel = () => {
    window.clearTimeout(timer.current);
    timer.current = undefined;
  };
  const handlers = {
    onPointerDown: (e: PointerEvent) => {
      if (e.pointerType !== 'touch') return;
      cancel();
      fired.current = false;
      held.current = false;
      origin.current = { x: e.clientX, y: e.clientY };
      timer.current = window.setTimeout(() => {
        timer.current = undefined;
        fired.current = true;
        held.current = true;
        toggle();
      }, LONG_PRESS_MS);
    },
    onPointerMove: (e: PointerEvent) => {
      if (timer.current === undefined) return;
      if (Math.hypot(e.clientX - origin.current.x, e.clientY - origin.current.y) > 10) cancel();
    },
    onPointerUp: () => {
      cancel();
      if (held.current) liftedAt.current = performance.now();
      held.current = false;
    },
    onPointerCancel: cancel,
    // Some browsers click where the finger of a long press leaves: on the menu it just opened.
    onClickCapture: (e: MouseEvent) => {
      if (performance.now() - liftedAt.current > 300) return;
      liftedAt.current = 0;
      e.preventDefault();
      e.stopPropagation();
    },
  };
  /** A contextmenu event (a right click, or the browser's own long press): toggles once. */
  const onContextMenu = () => {
    if (fired.current) { // the press has toggled already
      fired.current = false;
      return;
    }
    cancel(); // the browser came first: the timer must not toggle again
    toggle();
  };
  return { handlers, onContextMenu };
}

/** One message; rendered again only when one of its props changes (times formatted once). */
const Row = pure(function Row(p: RowProps) {
  const { m, head, day, unread, name, mine, moderator, me, chat } = p;
  const [menu, setMenu] = useState(false);
  const press = useLongPress(() => { if (!m.deleted) setMenu((open) => !open); });
  const iso = new Date(m.createdAt).toISOString();
  return (
    <li class={`msg${head ? ' head' : ''}${mine ? ' mine' : ''}${menu ? ' menu-open' : ''}${m.deleted ? ' deleted' : ''}`}
        data-seq={m.seq} data-id={m.id}
        {...press.handlers}
        onContextMenu={(e) => {
          if (m.deleted) return;
          e.preventDefault();
          press.onContextMenu();
        }}>
      {day && (
        <div class="sep day-sep" role="separator">
          <span>{dayLabel(m.createdAt)}</span>
        </div>
      )}
      {unread && (
        <div class="sep unread-sep" role="separator" aria-label="New messages">
          <span>New messages</span>
        </div>
      )}
      {head ? (
        <Avatar chat={chat} id={m.from} name={name} />
      ) : (
        <time class="gutter-time" dateTime={iso}>{clockTime(m.createdAt)}</time>
      )}
      <div class="msg-main">
        {head && (
          <div class="msg-meta">
            <span class="author">{name}</span>
            <time dateTime={iso}>{clockTime(m.createdAt)}</time>
          </div>
        )}
        {p.quote && <div class="reply-quote"><span aria-hidden="true">↪ </span>{p.quote}</div>}
        {p.editing && !m.deleted ? (
          <EditBox chat={chat} m={m} />
        ) : m.deleted ? (
          <div class="body deleted-body"><em>message deleted</em></div>
        ) : (
          <div class="body">
            {m.file && <FileView chat={chat} file={m.file} />}
            {(m.body || !m.file) && <RichText text={m.body} names={p.names} />}
            {m.editedAt && <time class="edited" dateTime={new Date(m.editedAt).toISOString()}>(edited)</time>}
          </div>
        )}
        {m.reactions && !m.deleted && (
          <div class="reactions">
            {m.reactions.map((r) => {
              const on = r.users.includes(me);
              return (
                <button key={r.emoji} type="button" class="reaction" aria-pressed={on}
                        aria-label={`${r.emoji} ${r.count}`} title={r.users.map((u) => chat.userName(u)).join(', ')}
                        onClick={() => chat.react(m.id, r.emoji, !on)}>
                  {r.emoji} <span class="count">{r.count}</span>
                </button>
              );
            })}
          </div>
        )}
        {p.seen && <div class="seen-mark">Seen</div>}
      </div>
      {!m.deleted && !p.editing && (
        <div class="msg-actions" role="toolbar" aria-label="Message actions">
          {EMOJI.map((e) => (
            <button key={e} type="button" aria-label={`React ${e}`}
                    onClick={() => { setMenu(false); chat.react(m.id, e, !m.reactions?.some((r) => r.emoji === e && r.users.includes(me))); }}>
              {e}
            </button>
          ))}
          <button type="button" onClick={() => {
            setMenu(false);
            chat.setReply(chat.open ?? '', m);
            document.getElementById('composer-input')?.focus();
          }}>Reply</button>
          {mine && <button type="button" onClick={() => { setMenu(false); chat.setEditing(m.seq); }}>Edit</button>}
          {(mine || moderator) && (
            <button type="button" onClick={() => {
              setMenu(false);
              const whose = mine ? 'this message' : `this message of ${name}`;
              const c = chat.open ? chat.convs.get(chat.open) : undefined;
              if (c && confirm(`Delete ${whose}? Everyone will see it as deleted.`)) chat.deleteMessage(c, m);
            }}>Delete</button>
          )}
        </div>
      )}
    </li>
  );
});

function PendingItem({ chat, p }: { chat: Chat; p: Pending }) {
  const status =
    p.status === 'failed'
      ? `Not sent: ${p.error ?? 'failed'}`
      : p.status === 'queued'
        ? 'Waiting for connection…'
        : 'Sending…';
  return (
    <li class={`msg head mine pending ${p.status}`} data-cid={p.cid}>
      <Avatar chat={chat} id={chat.me?.id ?? ''} name={chat.me?.name ?? ''} />
      <div class="msg-main">
        <div class="msg-meta">
          <span class="author">{chat.me?.name}</span>
          <span class="status">{status}</span>
        </div>
        <div class="body">
          {p.file && <div class="file-card"><span class="file-name">{p.file.name}</span> <span class="file-size">{formatSize(p.file.size)}</span></div>}
          {p.body}
        </div>
        {p.status === 'failed' && (
          <div class="pending-actions">
            <button type="button" class="small" onClick={() => chat.retry(p.cid)}>Retry</button>
            {p.refused && (
              <button type="button" class="small link" onClick={() => chat.discard(p.cid)}>Discard</button>
            )}
          </div>
        )}
      </div>
    </li>
  );
}

function tooLarge(text: string): boolean {
  return new TextEncoder().encode(text).length > MAX_BODY_BYTES;
}

/** Enter sends, Shift+Enter starts a new line. The draft is kept per conversation. */
function Composer({ chat, conv, title }: { chat: Chat; conv: Conv; title: string }) {
  const [text, setText] = useState(() => chat.drafts.get(conv.key));
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (window.matchMedia('(pointer: fine)').matches) ref.current?.focus();
  }, []);

  useLayoutEffect(() => {
    const el = ref.current!;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [text]);

  const update = (v: string) => {
    setText(v);
    chat.drafts.set(conv.key, v);
    if (error && !tooLarge(v)) setError(null); // the cause is gone
  };

  // @-autocomplete: the query at the caret, what it offers, which one is highlighted.
  const [suggest, setSuggest] = useState<{ q: MentionQuery; items: Suggestion[]; at: number } | null>(null);
  const lookup = (value: string, caret: number) => {
    const q = mentionQuery(value, caret);
    if (!q) return setSuggest(null);
    void chat.conversationPeople(conv).then((people) => {
      const el = ref.current;
      // Still the same query once the members came.
      if (!el || mentionQuery(el.value, el.selectionStart ?? 0)?.start !== q.start) return;
      const items = suggestions(people, q.prefix, chat.me?.id, conv.kind === 'channel' && chat.moderates(conv));
      setSuggest(items.length ? { q, items, at: 0 } : null);
    }, () => setSuggest(null));
  };
  const pick = (item: Suggestion) => {
    const el = ref.current;
    if (!el || !suggest) return;
    const done = complete(el.value, suggest.q, el.selectionStart ?? el.value.length, item);
    update(done.text);
    setSuggest(null);
    requestAnimationFrame(() => {
      el.focus();
      el.setSelectionRange(done.caret, done.caret);
    });
  };

  const reply = chat.replyTo[conv.key];
  const send = () => {
    if (!text.trim()) return;
    const err = chat.send(conv.key, text, reply?.id);
    setError(err);
    if (!err) {
      update('');
      if (reply) chat.setReply(conv.key, undefined);
    }
  };

  /** ↑ in an empty composer: edit our newest message. */
  const editLast = (): boolean => {
    const me = chat.me?.id;
    for (let i = conv.msgs.length - 1; i >= 0; i--) {
      const m = conv.msgs[i];
      if (m.from === me && !m.deleted) {
        chat.setEditing(m.seq);
        return true;
      }
    }
    return false;
  };

  const sendFiles = (files: FileList | File[] | null | undefined) => {
    for (const f of Array.from(files ?? [])) {
      void chat.sendFile(conv.key, f).then((err) => err && setError(err));
    }
  };
  const uploads = chat.uploads[conv.key] ?? [];

  const label = conv.kind === 'channel' ? `Message # ${title}` : `Message ${title}`;
  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); send(); }}>
      {reply && (
        <div class="reply-bar">
          <span>Replying to <strong>{chat.userName(reply.from)}</strong>: {reply.deleted ? 'deleted' : reply.body.slice(0, 120)}</span>
          <button type="button" class="small link" aria-label="Cancel reply"
                  onClick={() => chat.setReply(conv.key, undefined)}>✕</button>
        </div>
      )}
      {suggest && (
        <ul class="mention-suggest" id="mention-suggest" role="listbox" aria-label="Mention">
          {suggest.items.map((it, i) => (
            <li key={it.kind === 'user' ? it.id : it.word} id={`mention-opt-${i}`} role="option"
                aria-selected={i === suggest.at}
                onMouseDown={(e) => { e.preventDefault(); pick(it); }}>
              {it.kind === 'user' ? `@${it.name}` : `@${it.word}`}
              {it.kind === 'all' && <span class="hint">{it.word === 'channel' ? ' everyone here' : ' everyone online'}</span>}
            </li>
          ))}
        </ul>
      )}
      <label for="composer-input" class="visually-hidden">{label}</label>
      <textarea id="composer-input" ref={ref} rows={1} placeholder={label} value={text}
                aria-describedby={error ? 'composer-error' : undefined}
                aria-autocomplete="list" aria-controls={suggest ? 'mention-suggest' : undefined}
                onInput={(e) => {
                  update(e.currentTarget.value);
                  lookup(e.currentTarget.value, e.currentTarget.selectionStart ?? 0);
                  if (e.currentTarget.value) chat.typing(conv.key);
                }}
                onPaste={(e) => {
                  // A pasted image (a screenshot) is sent as a file; pasted text stays text.
                  const files = e.clipboardData?.files;
                  if (files?.length) {
                    e.preventDefault();
                    sendFiles(files);
                  }
                }}
                onKeyDown={(e) => {
                  if (suggest) {
                    const n = suggest.items.length;
                    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                      e.preventDefault();
                      setSuggest({ ...suggest, at: (suggest.at + (e.key === 'ArrowDown' ? 1 : n - 1)) % n });
                      return;
                    }
                    if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
                      e.preventDefault();
                      pick(suggest.items[suggest.at]);
                      return;
                    }
                    if (e.key === 'Escape') {
                      e.stopPropagation();
                      setSuggest(null);
                      return;
                    }
                  }
                  if (e.key === 'ArrowUp' && !e.altKey && !text && editLast()) {
                    e.preventDefault();
                  } else if (e.key === 'Escape' && reply) {
                    e.stopPropagation();
                    chat.setReply(conv.key, undefined);
                  } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                    e.preventDefault();
                    send();
                  }
                }} />
      <input type="file" id="composer-file" hidden multiple aria-label="Files to send"
             onChange={(e) => { sendFiles(e.currentTarget.files); e.currentTarget.value = ''; }} />
      <button type="button" class="attach" aria-label="Attach a file" title="Attach a file"
              onClick={() => document.getElementById('composer-file')?.click()}>📎</button>
      <button type="submit" class="primary">Send</button>
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Uploads">
          {uploads.map((u, i) => (
            <li key={i}>
              <span class="file-name">{u.name}</span>
              <progress max={1} value={u.progress} aria-label={`Uploading ${u.name}`} />
            </li>
          ))}
        </ul>
      )}
      {error && <p class="error" id="composer-error" role="alert">{error}</p>}
    </form>
  );
}
