import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { topSeq, type Chat, type Conv, type Pending } from '../chat';
import { formatTime } from '../hooks';

const BOTTOM_SLACK_PX = 40;
const LOAD_OLDER_PX = 200;

export function ConversationView({ chat }: { chat: Chat }) {
  const conv = chat.open ? chat.convs.get(chat.open) : undefined;
  if (!conv) {
    return (
      <main class="pane empty">
        <p>Pick a channel or a direct message, or start a new one.</p>
      </main>
    );
  }
  const title = chat.convTitle(conv);
  const space = conv.spaceId ? chat.spaces.find((s) => s.id === conv.spaceId) : undefined;
  return (
    <main class="pane" aria-labelledby="conv-title">
      <header class="pane-header">
        <button type="button" class="back" onClick={() => chat.openConv(null)}>
          <span aria-hidden="true">←</span> Conversations
        </button>
        <h1 id="conv-title">{conv.kind === 'channel' ? `# ${title}` : title}</h1>
        {space && <span class="hint">{space.name}</span>}
      </header>
      {conv.joined ? (
        <>
          <MessageList key={conv.key} chat={chat} conv={conv} />
          <Composer key={`c-${conv.key}`} chat={chat} conv={conv} title={title} />
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

interface Snapshot {
  first: number;
  height: number;
  top: number;
  atBottom: boolean;
}

function isAtBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= BOTTOM_SLACK_PX;
}

/** Messages, newest at the bottom; scrolling up pages older history in. */
function MessageList({ chat, conv }: { chat: Chat; conv: Conv }) {
  const ref = useRef<HTMLDivElement>(null);
  const snap = useRef<Snapshot | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const pending = chat.pendingOf(conv.key);
  const first = conv.msgs[0]?.seq ?? 0;

  const record = (el: HTMLElement) => {
    snap.current = { first, height: el.scrollHeight, top: el.scrollTop, atBottom: isAtBottom(el) };
  };

  // Before paint: stick to the bottom, or keep the view still when older messages arrive.
  useLayoutEffect(() => {
    const el = ref.current!;
    const s = snap.current;
    if (!s || s.atBottom) el.scrollTop = el.scrollHeight;
    else if (first < s.first) el.scrollTop = s.top + (el.scrollHeight - s.height);
    record(el);
    setAtBottom(snap.current!.atBottom);
    if (conv.loaded && conv.hasOlder && el.scrollHeight <= el.clientHeight + LOAD_OLDER_PX) {
      void chat.loadOlder(conv.key);
    }
  });

  // Seen up to the newest message: move the read marker (clears the red dot everywhere).
  useEffect(() => {
    if (atBottom && conv.loaded) chat.markRead(conv.key);
  });

  const onScroll = () => {
    const el = ref.current!;
    record(el);
    if (snap.current!.atBottom !== atBottom) setAtBottom(snap.current!.atBottom);
    if (el.scrollTop < LOAD_OLDER_PX) void chat.loadOlder(conv.key);
  };

  const jump = () => {
    const el = ref.current!;
    el.scrollTop = el.scrollHeight;
    onScroll();
  };

  const newer = Math.max(0, topSeq(conv) - conv.readSeq);
  return (
    <div class="messages-wrap">
      <div class="messages" ref={ref} onScroll={onScroll} tabIndex={0}
           role="log" aria-label="Messages" aria-live="polite" aria-relevant="additions">
        <div class="history-edge">
          {!conv.loaded ? (
            <span>Loading…</span>
          ) : conv.hasOlder ? (
            <button type="button" class="link" disabled={conv.loadingOlder}
                    onClick={() => void chat.loadOlder(conv.key)}>
              {conv.loadingOlder ? 'Loading older messages…' : 'Load older messages'}
            </button>
          ) : (
            <span>This is the start of the conversation.</span>
          )}
        </div>
        <ol class="msg-list">
          {conv.msgs.map((m) => (
            <li key={m.seq} class={`msg${m.from === chat.me?.id ? ' mine' : ''}`} data-seq={m.seq}>
              <div class="msg-meta">
                <span class="author">{chat.userName(m.from)}</span>
                <time dateTime={new Date(m.createdAt).toISOString()}
                      title={new Date(m.createdAt).toLocaleString()}>
                  {formatTime(m.createdAt)}
                </time>
              </div>
              <div class="body">{m.body}</div>
            </li>
          ))}
          {pending.map((p) => (
            <PendingItem key={p.cid} chat={chat} p={p} />
          ))}
        </ol>
      </div>
      {!atBottom && (
        <button type="button" class="jump" onClick={jump}>
          Jump to latest{newer > 0 ? ` (${newer} new)` : ''}
        </button>
      )}
    </div>
  );
}

function PendingItem({ chat, p }: { chat: Chat; p: Pending }) {
  const status =
    p.status === 'failed'
      ? `Not sent: ${p.error ?? 'failed'}`
      : p.status === 'queued'
        ? 'Waiting for connection…'
        : 'Sending…';
  return (
    <li class={`msg mine pending ${p.status}`} data-cid={p.cid}>
      <div class="msg-meta">
        <span class="author">{chat.me?.name}</span>
        <span class="status">{status}</span>
      </div>
      <div class="body">{p.body}</div>
      {p.status === 'failed' && (
        <div class="pending-actions">
          <button type="button" class="small" onClick={() => chat.retry(p.cid)}>Retry</button>
          {p.refused && (
            <button type="button" class="small link" onClick={() => chat.discard(p.cid)}>Discard</button>
          )}
        </div>
      )}
    </li>
  );
}

const drafts = new Map<string, string>();

/** Enter sends, Shift+Enter starts a new line. */
function Composer({ chat, conv, title }: { chat: Chat; conv: Conv; title: string }) {
  const [text, setText] = useState(drafts.get(conv.key) ?? '');
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
    drafts.set(conv.key, v);
  };

  const send = () => {
    if (!text.trim()) return;
    const err = chat.send(conv.key, text);
    setError(err);
    if (!err) update('');
  };

  const label = conv.kind === 'channel' ? `Message # ${title}` : `Message ${title}`;
  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); send(); }}>
      <label for="composer-input" class="visually-hidden">{label}</label>
      <textarea id="composer-input" ref={ref} rows={1} placeholder={label} value={text}
                onInput={(e) => update(e.currentTarget.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                    e.preventDefault();
                    send();
                  }
                }} />
      <button type="submit" class="primary">Send</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}
