//! A small document model (headings, paragraphs, lists, code, tables) with
//! two renderers: GitHub-flavoured Markdown and one self-contained HTML page
//! (inline CSS, A4 print stylesheet, no external resources). The playbook is
//! built once as a `Doc` so both formats always say the same thing.

use std::fmt::Write as _;

/// One block of a document.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Para(String),
    /// A paragraph with a bold lead-in: "**Lead:** text".
    Labeled(String, String),
    List(Vec<String>),
    Numbered(Vec<String>),
    /// Language hint ("sh", "yaml") and text.
    Code(&'static str, String),
    Table(Vec<String>, Vec<Vec<String>>),
    /// A page break when printed (HTML only; a rule in Markdown).
    Break,
}

/// A titled document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Doc {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }

    pub(crate) fn h(&mut self, level: u8, text: impl Into<String>) {
        self.push(Block::Heading(level, text.into()));
    }

    pub(crate) fn p(&mut self, text: impl Into<String>) {
        self.push(Block::Para(text.into()));
    }

    pub(crate) fn labeled(&mut self, lead: impl Into<String>, text: impl Into<String>) {
        self.push(Block::Labeled(lead.into(), text.into()));
    }

    pub(crate) fn list(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.push(Block::List(items));
        }
    }

    pub(crate) fn code(&mut self, lang: &'static str, text: impl Into<String>) {
        let text = text.into();
        if !text.trim().is_empty() {
            self.push(Block::Code(lang, text.trim_end().to_string()));
        }
    }

    /// GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# {}\n", md_inline(&self.title));
        for b in &self.blocks {
            s.push('\n');
            match b {
                Block::Heading(level, t) => {
                    let _ = writeln!(s, "{} {}", "#".repeat(usize::from(*level)), md_inline(t));
                }
                Block::Para(t) => {
                    let _ = writeln!(s, "{}", md_inline(t));
                }
                Block::Labeled(lead, t) if t.is_empty() => {
                    let _ = writeln!(s, "**{}**", md_inline(lead));
                }
                Block::Labeled(lead, t) => {
                    let _ = writeln!(s, "**{}:** {}", md_inline(lead), md_inline(t));
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(s, "- {}", md_inline(i).replace('\n', "\n  "));
                    }
                }
                Block::Numbered(items) => {
                    for (n, i) in items.iter().enumerate() {
                        let _ = writeln!(s, "{}. {}", n + 1, md_inline(i).replace('\n', "\n   "));
                    }
                }
                Block::Code(lang, t) => {
                    let fence = if t.contains("```") { "~~~~" } else { "```" };
                    let _ = writeln!(s, "{fence}{lang}\n{t}\n{fence}");
                }
                Block::Table(head, rows) => {
                    let _ = writeln!(
                        s,
                        "| {} |",
                        head.iter()
                            .map(|h| md_cell(h))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
                    for r in rows {
                        let _ = writeln!(
                            s,
                            "| {} |",
                            r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                        );
                    }
                }
                Block::Break => s.push_str("---\n"),
            }
        }
        s
    }

    /// One HTML page: inline CSS only, nothing fetched, prints on A4.
    pub fn to_html(&self) -> String {
        let mut s = page_start(&self.title, PLAYBOOK_CSS);
        let _ = writeln!(s, "<h1>{}</h1>", html_inline(&self.title));
        for b in &self.blocks {
            match b {
                Block::Heading(level, t) => {
                    let l = (*level).clamp(2, 6);
                    let _ = writeln!(s, "<h{l} id=\"{}\">{}</h{l}>", slug(t), html_inline(t));
                }
                Block::Para(t) => {
                    let _ = writeln!(s, "<p>{}</p>", html_inline(t));
                }
                Block::Labeled(lead, t) if t.is_empty() => {
                    let _ = writeln!(
                        s,
                        "<p class=\"lead\"><strong>{}</strong></p>",
                        html_inline(lead)
                    );
                }
                Block::Labeled(lead, t) => {
                    let _ = writeln!(
                        s,
                        "<p><strong>{}:</strong> {}</p>",
                        html_inline(lead),
                        html_inline(t)
                    );
                }
                Block::List(items) | Block::Numbered(items) => {
                    let tag = if matches!(b, Block::List(_)) {
                        "ul"
                    } else {
                        "ol"
                    };
                    let _ = writeln!(s, "<{tag}>");
                    for i in items {
                        let _ = writeln!(s, "<li>{}</li>", html_inline(i).replace('\n', "<br>"));
                    }
                    let _ = writeln!(s, "</{tag}>");
                }
                Block::Code(lang, t) => {
                    let _ = writeln!(s, "<pre class=\"{lang}\"><code>{}</code></pre>", escape(t));
                }
                Block::Table(head, rows) => {
                    s.push_str("<table>\n<thead><tr>");
                    for h in head {
                        let _ = write!(s, "<th>{}</th>", html_inline(h));
                    }
                    s.push_str("</tr></thead>\n<tbody>\n");
                    for r in rows {
                        s.push_str("<tr>");
                        for c in r {
                            let _ = write!(s, "<td>{}</td>", html_inline(c));
                        }
                        s.push_str("</tr>\n");
                    }
                    s.push_str("</tbody>\n</table>\n");
                }
                Block::Break => s.push_str("<hr class=\"page\">\n"),
            }
        }
        s.push_str("</body>\n</html>\n");
        s
    }
}

/// `<!doctype html>` .. `<body>` with the given inline stylesheet.
pub(crate) fn page_start(title: &str, css: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{css}</style>\n</head>\n<body>\n",
        escape(title)
    )
}

/// Text-level HTML escaping (also safe inside attribute values).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id for a heading: lower-case words joined by '-'.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Inline text may hold `code` spans (between backticks); everything else is plain.
fn html_inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// Markdown inline: code spans stay; `<` outside them would start raw HTML on GitHub.
fn md_inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "`{part}`");
        } else {
            out.push_str(
                &part
                    .replace('<', "&lt;")
                    .replace('*', "\\*")
                    .replace('_', "\\_"),
            );
        }
    }
    out
}

fn md_cell(s: &str) -> String {
    md_inline(s).replace('|', "\\|").replace('\n', "<br>")
}

/// Screen and print (A4) styles of the playbook; system font stacks only.
const PLAYBOOK_CSS: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --code: #f6f8fa; --accent: #b3261e; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; font-size: 15px; }
h1 { border-bottom: 3px solid var(--accent); padding-bottom: .3rem; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.6rem; }
h4 { margin-bottom: .3rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
code { background: var(--code); padding: 0 .25em; border-radius: 3px; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 4px; padding: .6rem .8rem;
  overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: .5rem 0; width: 100%; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--code); }
hr.page { border: 0; border-top: 1px dashed var(--line); margin: 2rem 0; }
@page { size: A4; margin: 16mm 14mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10.5pt; }
  h2 { break-before: auto; }
  h2, h3, h4 { break-after: avoid; }
  pre, table, li { break-inside: avoid; }
  hr.page { break-after: page; border: 0; margin: 0; }
  a { color: inherit; text-decoration: none; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_escape_and_keep_code_spans() {
        let mut d = Doc::new("T <1>");
        d.p("run `a < b` then <x>");
        d.code("sh", "echo '<hi>'\n");
        let md = d.to_markdown();
        assert!(md.contains("run `a < b` then &lt;x>"), "{md}");
        assert!(md.contains("```sh\necho '<hi>'\n```"), "{md}");
        let html = d.to_html();
        assert!(
            html.contains("<p>run <code>a &lt; b</code> then &lt;x&gt;</p>"),
            "{html}"
        );
        assert!(html.contains("echo &#39;&lt;hi&gt;&#39;"), "{html}");
        assert!(html.contains("@page { size: A4"));
    }

    #[test]
    fn slug_is_stable() {
        assert_eq!(
            slug("Scenario 1: latency (Chaos Mesh)"),
            "scenario-1-latency-chaos-mesh"
        );
    }
}
