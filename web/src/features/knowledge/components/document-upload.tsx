import { useQueryClient } from "@tanstack/react-query";
import { type DragEvent, useRef, useState } from "react";
import { errorMessage } from "@/lib/api-error";
import { collectionsQueryKey, documentsQueryKey } from "../api/types";
import { uploadDocument } from "../api/upload-document";

const ACCEPT = ".txt,.md,.markdown,.html,.htm,.pdf";

interface Upload {
  id: number;
  name: string;
  progress: number;
  error: string | null;
}

/** Drop files (or pick them): each uploads with its own progress bar, then shows in the list. */
export function DocumentUpload({ collectionId }: { collectionId: string }) {
  const queryClient = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const nextId = useRef(0);

  const change = (id: number, patch: Partial<Upload>) => setUploads((all) => all.map((u) => (u.id === id ? { ...u, ...patch } : u)));

  const start = (files: FileList | File[]) => {
    for (const file of Array.from(files)) {
      const id = nextId.current++;
      setUploads((all) => [...all, { id, name: file.name, progress: 0, error: null }]);
      uploadDocument(collectionId, file, (progress) => change(id, { progress }))
        .then(() => {
          setUploads((all) => all.filter((u) => u.id !== id));
          void queryClient.invalidateQueries({ queryKey: documentsQueryKey(collectionId) });
          void queryClient.invalidateQueries({ queryKey: collectionsQueryKey });
        })
        .catch((error: unknown) => change(id, { error: errorMessage(error) }));
    }
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    start(event.dataTransfer.files);
  };

  return (
    <div className="knowledge__upload">
      <div
        className={`dropzone ${dragging ? "dropzone--active" : ""}`}
        data-testid="dropzone"
        role="button"
        tabIndex={0}
        onClick={() => input.current?.click()}
        onKeyDown={(e) => {
          if (e.key === "Enter" || e.key === " ") input.current?.click();
        }}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <strong>Drop documents here</strong>
        <span className="muted">or click to choose: .txt, .md, .html, .pdf</span>
        <input
          ref={input}
          type="file"
          multiple
          accept={ACCEPT}
          hidden
          aria-label="Choose documents"
          onChange={(e) => {
            if (e.target.files) start(e.target.files);
            e.target.value = "";
          }}
        />
      </div>
      {uploads.length > 0 ? (
        <ul className="list" aria-label="Uploads">
          {uploads.map((upload) => (
            <li key={upload.id} className="list__item">
              <span className="list__main">
                <span className="list__title">{upload.name}</span>
                {upload.error ? (
                  <span className="field__error" role="alert">
                    {upload.error}
                  </span>
                ) : (
                  <progress max={1} value={upload.progress} aria-label={`Uploading ${upload.name}`} />
                )}
              </span>
              {upload.error ? (
                <button type="button" className="btn btn--ghost btn--sm" onClick={() => setUploads((all) => all.filter((u) => u.id !== upload.id))}>
                  Dismiss
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
