// A message body as DOM nodes: the markdown tree of src/text/markdown.ts rendered with Preact
// elements, so user text only ever becomes text nodes and attribute values (an href that the
// parser allows only as http(s)); never innerHTML.

import type { ComponentChildren } from 'preact';
import { pure } from '../hooks';
import { parse, type Block, type Inline } from '../text/markdown';

/** Names of mentioned users by id: `<@ID>` in a body shows as an @name chip. */
export type Names = Record<string, string>;
const MENTION = /<@(\d{1,20})>/g;

/** The user ids a body mentions (`<@USER_ID>`), in order, once each. */
export function mentioned(text: string): string[] {
  return [...new Set(Array.from(text.matchAll(MENTION), (x) => x[1]))];
}

/** `<@ID>`, `<!channel>` or `<!here>`: the id or the broadcast word is the captured group. */
const CHIP = /<(?:@(\d{1,20})|!(channel|here))>/;

function chips(text: string, names: Names | undefined, key: number): ComponentChildren {
  if (!names || !CHIP.test(text)) return text;
  const parts = text.split(new RegExp(CHIP.source, 'g')); // then: id, word, text, id, word, ...
  const out: ComponentChildren[] = [];
  for (let i = 0; i < parts.length; i += 3) {
    if (parts[i]) out.push(parts[i]);
    const [id, word] = [parts[i + 1], parts[i + 2]];
    if (id) out.push(<span key={`${key}.${i}`} class="mention" data-user={id}>@{names[id] ?? id}</span>);
    if (word) out.push(<span key={`${key}.${i}`} class="mention mention-all" data-mention={word}>@{word}</span>);
  }
  return out;
}

function inline(list: Inline[], names?: Names): ComponentChildren {
  return list.map((n, k) => {
    if (typeof n === 'string') return chips(n, names, k);
    switch (n.t) {
      case 'b':
        return <strong key={k}>{inline(n.c, names)}</strong>;
      case 'i':
        return <em key={k}>{inline(n.c, names)}</em>;
      case 's':
        return <s key={k}>{inline(n.c, names)}</s>;
      case 'code':
        return <code key={k}>{n.text}</code>;
      case 'a':
        return (
          <a key={k} href={n.href} target="_blank" rel="noopener noreferrer">
            {n.text}
          </a>
        );
    }
  });
}

function blocks(list: Block[], names?: Names): ComponentChildren {
  return list.map((b, k) => {
    switch (b.t) {
      case 'p':
        return <p key={k}>{inline(b.c, names)}</p>;
      case 'pre':
        return (
          <pre key={k}>
            <code>{b.text}</code>
          </pre>
        );
      case 'quote':
        return <blockquote key={k}>{blocks(b.c, names)}</blockquote>;
      case 'ul':
        return <ul key={k}>{b.items.map((it, i) => <li key={i}>{inline(it, names)}</li>)}</ul>;
      case 'ol':
        return <ol key={k} start={b.start}>{b.items.map((it, i) => <li key={i}>{inline(it, names)}</li>)}</ol>;
    }
  });
}

/** Parsed once per mount: it re-renders only when the text changes. */
export const RichText = pure(function RichText({ text, names }: { text: string; names?: Names }) {
  return <>{blocks(parse(text), names)}</>;
});
