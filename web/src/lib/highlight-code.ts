/**
 * A rehype plugin: fenced code with a known language gets highlight.js's token spans (class names
 * only) in place, in the same tree react-markdown turns into React elements, so no HTML string is
 * ever parsed. lowlight with a hand-picked set of common languages keeps the bundle small; code
 * without a language (or with one not in the set) stays plain: guessing is slow and often wrong.
 */
import type { Element, ElementContent, Root } from "hast";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import csharp from "highlight.js/lib/languages/csharp";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import dockerfile from "highlight.js/lib/languages/dockerfile";
import go from "highlight.js/lib/languages/go";
import ini from "highlight.js/lib/languages/ini";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import kotlin from "highlight.js/lib/languages/kotlin";
import markdown from "highlight.js/lib/languages/markdown";
import php from "highlight.js/lib/languages/php";
import python from "highlight.js/lib/languages/python";
import ruby from "highlight.js/lib/languages/ruby";
import rust from "highlight.js/lib/languages/rust";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import swift from "highlight.js/lib/languages/swift";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { createLowlight } from "lowlight";

// Aliases come with each grammar: js, ts, py, sh, yml, html, …
const lowlight = createLowlight({
  bash, c, cpp, csharp, css, diff, dockerfile, go, ini, java, javascript, json, kotlin, markdown, php, python, ruby, rust, shell, sql, swift, typescript, xml, yaml,
});

function textOf(node: ElementContent): string {
  if (node.type === "text") return node.value;
  if (node.type === "element") return node.children.map(textOf).join("");
  return "";
}

function highlight(code: Element): void {
  const classes = Array.isArray(code.properties.className) ? code.properties.className.map(String) : [];
  const language = classes.find((name) => name.startsWith("language-"))?.slice("language-".length);
  if (!language || !lowlight.registered(language)) return;
  const result = lowlight.highlight(language, code.children.map(textOf).join(""), { prefix: "hljs-" });
  code.properties.className = ["hljs", ...classes];
  code.children = result.children as ElementContent[];
}

function visit(node: Root | Element): void {
  for (const child of node.children) {
    if (child.type !== "element") continue;
    if (child.tagName === "pre") {
      for (const inner of child.children) if (inner.type === "element" && inner.tagName === "code") highlight(inner);
    } else {
      visit(child);
    }
  }
}

/** Highlight every `pre > code.language-*` in the tree. */
export function rehypeHighlightCode() {
  return (tree: Root) => visit(tree);
}
