/**
 * MarkdownView, loaded on first use: the markdown and highlighting stack (react-markdown, remark-gfm,
 * lowlight with its grammars; about half of the app's JavaScript) stays out of the first page's
 * bundle, so sign-in and the empty chat page load without it. Until it arrives, text shows as is.
 */
import { lazy, memo, Suspense } from "react";

const Renderer = lazy(() => import("./markdown-renderer"));

export const MarkdownView = memo(function MarkdownView({ source }: { source: string }) {
  return (
    <Suspense fallback={<div className="markdown markdown--plain">{source}</div>}>
      <Renderer source={source} />
    </Suspense>
  );
});
