import { useEffect, useState } from 'preact/hooks';
import type { Chat } from '../chat';
import type { FileMeta } from '../types';

/** The image types the server serves inline (docs/api.md): shown as previews. */
const INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const PREVIEW_MAX = 320; // CSS pixels, the longer side

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** The preview's size: the image's own, scaled down to fit PREVIEW_MAX. */
function fit(f: FileMeta): { width?: number; height?: number } {
  if (!f.width || !f.height) return {};
  const k = Math.min(1, PREVIEW_MAX / Math.max(f.width, f.height));
  return { width: Math.max(1, Math.round(f.width * k)), height: Math.max(1, Math.round(f.height * k)) };
}

/**
 * An object URL of a file's (or an avatar's) bytes, fetched with the session's token
 * (chat.fileUrl); nothing while `source` is undefined.
 */
export function useObjectUrl(chat: Chat, source: string | undefined): { url?: string; failed: boolean } {
  const [state, setState] = useState<{ url?: string; failed: boolean }>({ failed: false });
  useEffect(() => {
    if (!source) {
      setState({ failed: false });
      return;
    }
    let live = true;
    chat.fileUrl(source).then(
      (url) => live && setState({ url, failed: false }),
      () => live && setState({ failed: true }),
    );
    return () => {
      live = false;
    };
  }, [source]);
  return state;
}

/**
 * A file message's attachment: an image preview (its thumbnail when the server made one; a
 * click opens the lightbox with the full image) or a file card.
 */
export function FileView({ chat, file }: { chat: Chat; file: FileMeta }) {
  const image = INLINE.has(file.type);
  const { url, failed } = useObjectUrl(chat, image ? (file.thumb_url ?? file.url) : undefined);
  const [open, setOpen] = useState(false);
  if (image && !failed) {
    return (
      <div class="file-image">
        <button type="button" class="image-button" aria-label={`Open image ${file.name}`} onClick={() => setOpen(true)}>
          {url ? (
            <img src={url} alt={file.name} data-thumb={file.thumb_url ? 'true' : undefined} {...fit(file)} />
          ) : (
            <span class="image-placeholder" style={fit(file)} aria-hidden="true" />
          )}
        </button>
        {open && <Lightbox chat={chat} file={file} onClose={() => setOpen(false)} />}
      </div>
    );
  }
  return <FileCard chat={chat} file={file} />;
}

function FileCard({ chat, file }: { chat: Chat; file: FileMeta }) {
  const [error, setError] = useState<string | null>(null);
  const download = () => {
    chat.fileUrl(file.url).then(
      (url) => {
        const a = document.createElement('a');
        a.href = url;
        a.download = file.name;
        document.body.appendChild(a);
        a.click();
        a.remove();
      },
      () => setError('The file is no longer available.'),
    );
  };
  return (
    <div class="file-card">
      <span class="file-icon" aria-hidden="true">📄</span>
      <span class="file-info">
        <span class="file-name">{file.name}</span>
        <span class="file-size">{formatSize(file.size)}</span>
      </span>
      <button type="button" class="small" onClick={download} aria-label={`Download ${file.name}`}>Download</button>
      {error && <span class="error" role="alert">{error}</span>}
    </div>
  );
}

/** The image at full size over the page; Esc, a click outside it or ✕ closes it. */
function Lightbox({ chat, file, onClose }: { chat: Chat; file: FileMeta; onClose: () => void }) {
  const { url } = useObjectUrl(chat, file.url);
  const name = file.name;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        onClose();
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => document.removeEventListener('keydown', onKey, true);
  }, []);
  return (
    <div class="lightbox" role="dialog" aria-modal="true" aria-label={name} onClick={onClose}>
      {url ? (
        <img src={url} alt={name} onClick={(e) => e.stopPropagation()} />
      ) : (
        <span class="hint" role="status">Loading…</span>
      )}
      <button type="button" class="lightbox-close" aria-label="Close" autoFocus onClick={onClose}>✕</button>
    </div>
  );
}
