/**
 * Markdown rendered safely: react-markdown builds React elements (never innerHTML), raw HTML in the
 * source is shown as literal text (no rehype-raw), and only http(s)/mailto links survive.
 */
import { type ReactNode, memo, useState } from "react";
import Markdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { safeUrl } from "@/lib/safe-url";

interface MdNode {
  type: string;
  children?: MdNode[];
}

/** A remark plugin: HTML written in the message becomes visible text instead of markup. */
function remarkHtmlAsText() {
  const visit = (node: MdNode) => {
    if (node.type === "html") node.type = "text";
    node.children?.forEach(visit);
  };
  return (tree: MdNode) => visit(tree);
}

function CodeBlock({ children }: { children?: ReactNode }) {
  const [copied, setCopied] = useState(false);
  const text = extractText(children);
  return (
    <div className="md-code">
      <button
        type="button"
        className="md-code__copy"
        onClick={() => {
          void navigator.clipboard?.writeText(text).then(() => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          });
        }}
      >
        {copied ? "Copied" : "Copy"}
      </button>
      <pre>{children}</pre>
    </div>
  );
}

function extractText(node: ReactNode): string {
  if (typeof node === "string" || typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(extractText).join("");
  if (node && typeof node === "object" && "props" in node) {
    return extractText((node.props as { children?: ReactNode }).children);
  }
  return "";
}

const components: Components = {
  a: ({ href, children }) => {
    const url = href ? safeUrl(href) : null;
    if (!url) return <span className="md-unsafe-link">{children}</span>;
    return (
      <a href={url} target="_blank" rel="noopener noreferrer nofollow">
        {children}
      </a>
    );
  },
  // Images are shown as links: no requests to third-party hosts just by opening a chat.
  img: ({ src, alt }) => {
    const url = typeof src === "string" ? safeUrl(src) : null;
    const label = alt || "image";
    return url ? (
      <a href={url} target="_blank" rel="noopener noreferrer nofollow">
        [{label}]
      </a>
    ) : (
      <span>[{label}]</span>
    );
  },
  pre: ({ children }) => <CodeBlock>{children}</CodeBlock>,
};

function urlTransform(url: string): string {
  return safeUrl(url) ?? "";
}

export const MarkdownView = memo(function MarkdownView({ source }: { source: string }) {
  return (
    <div className="markdown">
      <Markdown remarkPlugins={[remarkGfm, remarkHtmlAsText]} urlTransform={urlTransform} components={components}>
        {source}
      </Markdown>
    </div>
  );
});
