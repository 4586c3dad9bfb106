// What the server's WebSocket frames do to the model (docs/protocol.md, "Server -> client"):
// `hello` starts a resume (sync cursors, resends, owed receipts), `msg` and `sent` merge
// messages and settle sends, `read` moves the read marker, `error` fails a send or becomes a
// notice. `synced` and `pong` need nothing: messages are merged as they come. The Socket filters
// `pong` and calls onHello for `hello`; chat.ts builds the Target.

import type { ServerFrame } from '../types';
import { insert, lowerBound, syncCursors, toMsg, trim, type Conv, type Msg } from './conversation';
import type { Directory } from './directory';
import type { Outbox } from './outbox';
import type { Presence } from './presence';
import type { Transport } from './ports';
import type { Receipts } from './receipts';

/** The model parts a frame may touch, and the effects that reach beyond the model. */
export interface Target {
  readonly dir: Directory;
  readonly outbox: Outbox;
  readonly receipts: Receipts;
  readonly send: Transport;
  /** Whom this tab watches (model/presence.ts); absent: presence is not shown. */
  readonly presence?: Presence;
  /** The logged-in user's id. */
  me(): string | undefined;
  fillGaps(c: Conv): void;
  /** A conversation new to us: fetch its name and space with the list, soon. */
  refreshConversationsSoon(): void;
  /** After a reconnect: read markers moved and conversations started while we were away. */
  refreshAll(): void;
  notice(text: string): void;
  /** A message from someone else arrived live (desktop notifications). */
  incoming(c: Conv, m: Msg): void;
  changed(): void;
  now(): number;
  /** Calls typingNow (and re-renders) after `ms`: an indicator expired. */
  expireTyping(c: Conv, ms: number): void;
  /** This user was removed or banned from a space (on every device), or (`conversation`, a
   *  channel of it) removed from that channel, or the channel was deleted. */
  removedFrom?(spaceId: string, reason: string, conversation?: string): void;
  /** A send to a channel was forbidden: its settings may have changed (archived, say). */
  channelRefused?(conversation: string): void;
}

/** A typing indicator shows this long at most, whatever the frame says. */
const TYPING_MAX_MS = 10_000;

/**
 * The body mentions this user: `<@USER_ID>`, or in a channel `<!channel>` / `<!here>` (the
 * server refused them from senders not allowed; a live `<!here>` reaches us online).
 */
export function mentions(body: string, me: string | undefined, channel = false): boolean {
  if (!me) return false;
  return body.includes(`<@${me}>`) || (channel && (body.includes('<!channel>') || body.includes('<!here>')));
}

/** Who types in the conversation now (their indicators not expired), expired ones forgotten. */
export function typingNow(c: Conv, now: number): string[] {
  const out: string[] = [];
  for (const [u, until] of Object.entries(c.typing)) {
    if (until > now) out.push(u);
    else delete c.typing[u];
  }
  return out;
}

export function onHello(t: Target, reconnect: boolean): void {
  // Ask for exactly what this tab lacks in the conversations it holds.
  const { cursors, changes } = syncCursors(t.dir.convs.values());
  if (Object.keys(cursors).length) t.send({ op: 'sync', cursors, changes });
  t.outbox.resend();
  for (const c of t.dir.convs.values()) t.receipts.sendRead(c);
  t.receipts.flush();
  t.presence?.reconnected();
  if (reconnect) t.refreshAll();
}

export function onFrame(t: Target, f: ServerFrame): void {
  switch (f.op) {
    case 'msg': {
      const known = t.dir.get(f.conversation);
      const c = t.dir.ensure(f.conversation);
      if (!known || !c.joined) {
        c.joined = true;
        t.refreshConversationsSoon();
      }
      const m = toMsg(f);
      const fresh = insert(c, [m]);
      trim(c);
      delete c.typing[f.from]; // their message ends their typing line
      if (fresh && f.from !== t.me()) {
        if (f.seq > c.readSeq && mentions(m.body, t.me(), c.kind === 'channel')) c.mentions++;
        t.incoming(c, m);
      }
      if (f.from === t.me()) {
        c.readSeq = Math.max(c.readSeq, f.seq); // the server moved our marker with the send
        if (f.cid) t.outbox.settle(f.cid); // ours, its `sent` lost with an earlier connection
      }
      t.receipts.ackLater(c);
      if (c.loaded && c.msgs.length > 1 && c.msgs[c.msgs.length - 2].seq !== f.seq - 1) {
        t.fillGaps(c);
      }
      t.changed();
      break;
    }
    case 'sent': {
      const p = t.outbox.settle(f.cid);
      if (!p) break; // settled already: a resend answered twice, or its `msg` came first
      const c = t.dir.ensure(f.conversation);
      insert(c, [
        {
          id: f.id, seq: f.seq, from: t.me()!, type: p.file ? 'file' : 'text', body: p.body,
          createdAt: f.created_at ?? p.createdAt, cid: f.cid, rev: 0,
          ...(p.replyTo ? { replyTo: p.replyTo } : {}),
          // A file message of ours shows its file at once (its upload's answer), not at the
          // next history load.
          ...(p.file ? { file: p.file } : {}),
        },
      ]);
      c.readSeq = Math.max(c.readSeq, f.seq);
      t.receipts.ackLater(c);
      if (c.loaded) t.fillGaps(c);
      t.changed();
      break;
    }
    case 'edited':
    case 'deleted':
    case 'reaction': {
      // The whole message as it is now: upserted by seq when newer (its rev) than the held copy.
      // A change of a message not held is dropped: history pages bring messages as they are.
      const c = t.dir.get(f.conversation);
      if (!c) break;
      const held = c.msgs[lowerBound(c.msgs, f.seq)];
      if (held?.seq === f.seq) insert(c, [toMsg(f)]);
      if (f.rev) c.rev = Math.max(c.rev, f.rev);
      t.changed();
      break;
    }
    case 'seen': {
      const c = t.dir.get(f.conversation);
      if (!c) break;
      c.peerReadSeq = Math.max(c.peerReadSeq, f.seq);
      t.changed();
      break;
    }
    case 'typing': {
      const c = t.dir.get(f.conversation);
      if (!c || f.user === t.me()) break;
      const ms = Math.min(Math.max(f.expires_ms, 0), TYPING_MAX_MS);
      c.typing[f.user] = t.now() + ms;
      t.expireTyping(c, ms);
      t.changed();
      break;
    }
    case 'read': {
      const c = t.dir.get(f.conversation);
      if (!c) break;
      c.readSeq = Math.max(c.readSeq, f.seq);
      c.readSent = Math.max(c.readSent, f.seq);
      t.changed();
      break;
    }
    case 'presence_sub': {
      t.presence?.answered();
      t.presence?.apply(f.presence);
      break;
    }
    case 'presence': {
      t.presence?.apply({ [f.user]: f.status });
      break;
    }
    case 'removed': {
      t.removedFrom?.(f.space, f.reason, f.conversation);
      break;
    }
    case 'error': {
      if (f.ref === 'typing') break; // an indicator not shown is no news for the user
      if (f.ref === 'presence_sub') {
        t.presence?.refused(f.code); // asked again later; dots not shown are no news either
        break;
      }
      const conv = f.cid ? t.outbox.list.find((p) => p.cid === f.cid)?.conv : undefined;
      if (conv?.startsWith('channel:') && f.code === 'forbidden') t.channelRefused?.(conv);
      if (!t.outbox.refuse(f.cid, f.code, f.message)) {
        t.notice(`The server refused ${f.ref ?? 'a request'}: ${f.message}`);
      }
      break;
    }
    default:
      break;
  }
}
