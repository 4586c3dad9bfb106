// A message body as DOM nodes: the markdown tree of src/text/markdown.ts rendered with Preact
// elements, so user text only ever becomes text nodes and attribute values (an href that the
// parser allows only as http(s)); never innerHTML.

import type { ComponentChildren } from 'preact';
import { pure } from '../hooks';
import { parse, type Block, type Inline } from '../text/markdown';

function inline(list: Inline[]): ComponentChildren {
  return list.map((n, k) => {
    if (typeof n === 'string') return n;
    switch (n.t) {
      case 'b':
        return <strong key={k}>{inline(n.c)}</strong>;
      case 'i':
        return <em key={k}>{inline(n.c)}</em>;
      case 's':
        return <s key={k}>{inline(n.c)}</s>;
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

function blocks(list: Block[]): ComponentChildren {
  return list.map((b, k) => {
    switch (b.t) {
      case 'p':
        return <p key={k}>{inline(b.c)}</p>;
      case 'pre':
        return (
          <pre key={k}>
            <code>{b.text}</code>
          </pre>
        );
      case 'quote':
        return <blockquote key={k}>{blocks(b.c)}</blockquote>;
      case 'ul':
        return <ul key={k}>{b.items.map((it, i) => <li key={i}>{inline(it)}</li>)}</ul>;
      case 'ol':
        return <ol key={k} start={b.start}>{b.items.map((it, i) => <li key={i}>{inline(it)}</li>)}</ol>;
    }
  });
}

/** Parsed once per mount: it re-renders only when the text changes. */
export const RichText = pure(function RichText({ text }: { text: string }) {
  return <>{blocks(parse(text))}</>;
});
