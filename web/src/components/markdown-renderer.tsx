/**
 * Markdown rendered safely: react-markdown builds React elements (never innerHTML), raw HTML in the
 * source is shown as literal text (no rehype-raw), and only http(s)/mailto links survive. Code is
 * highlighted by highlight.js (class-only spans in the same tree, so still no HTML strings): see
 * lib/highlight-code.ts.
 */
import { type ReactNode, isValidElement, memo } from "react";
import Markdown, { type Components, type Options } from "react-markdown";
import remarkGfm from "remark-gfm";
import { CopyButton } from "@/components/ui/copy-button";
import { rehypeHighlightCode } from "@/lib/highlight-code";
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

/** The fence's language (`language-py` on the code element), or null when it had none. */
function codeLanguage(children: ReactNode): string | null {
  const code = Array.isArray(children) ? children[0] : children;
  if (!isValidElement(code)) return null;
  const className = (code.props as { className?: string }).className ?? "";
  return /(?:^|\s)language-([\w+#.-]+)/.exec(className)?.[1] ?? null;
}

function CodeBlock({ children }: { children?: ReactNode }) {
  const language = codeLanguage(children);
  return (
    <div className="md-code" data-testid="code-block">
      <div className="md-code__bar">
        <span className="md-code__language">{language ?? "text"}</span>
        {/* Always visible: touch screens have no hover. */}
        <CopyButton text={() => extractText(children)} label="Copy code" className="md-code__copy" />
      </div>
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

const rehypePlugins: Options["rehypePlugins"] = [rehypeHighlightCode];

function urlTransform(url: string): string {
  return safeUrl(url) ?? "";
}

const MarkdownRenderer = memo(function MarkdownRenderer({ source }: { source: string }) {
  return (
    <div className="markdown">
      <Markdown remarkPlugins={[remarkGfm, remarkHtmlAsText]} rehypePlugins={rehypePlugins} urlTransform={urlTransform} components={components}>
        {source}
      </Markdown>
    </div>
  );
});

export default MarkdownRenderer;
