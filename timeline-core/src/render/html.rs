//! One report as a self-contained HTML page: the request line and summary
//! line, a waterfall of every action, a table per category, the repeated
//! statements (N+1), violations and dropped actions.
//!
//! The page loads nothing and runs nothing: its Content-Security-Policy
//! forbids scripts and every fetch, it carries no script of its own (hover
//! is `title`, click is `<details>` and `#anchor`), and every string from
//! the timeline is escaped, bidirectional overrides and control characters
//! shown as visible `[U+…]` marks.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::actions::{call_site, depths, error_text, outcome_label};
use super::report::Report;
use crate::Action;
use crate::text::{floor_char_boundary, one_line};
use crate::time::{millis, rfc3339};

/// The most actions drawn; beyond, a note says how many were left out.
pub(crate) const MAX_ROWS: usize = 1_000;

/// The most bytes of full details a page shows; past it, each detail is cut
/// to [`CUT_DETAIL`] bytes with a note. Keeps a page of 1,000 64 KiB
/// statements loadable.
const DETAIL_BUDGET: usize = 4 << 20;

/// What a detail is cut to once the budget is spent.
const CUT_DETAIL: usize = 2_048;

/// How much of a detail the collapsed row shows.
const ROW_DETAIL_CHARS: usize = 160;

/// How much of a detail a tooltip shows.
const TITLE_DETAIL_CHARS: usize = 300;

/// The most repeated statements and violations listed.
const MAX_LISTED: usize = 100;

/// The most call sites listed for one finding.
const MAX_SITES: usize = 10;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header,section{padding:8px 20px}
header{background:#fff;border-bottom:1px solid #ddd}
h1{font-size:18px;margin:4px 0;font-family:ui-monospace,monospace;word-break:break-all}
h2{font-size:15px;margin:14px 0 6px}
.summary{font-family:ui-monospace,monospace;margin:4px 0}
.meta{color:#666;font-size:12px;margin:2px 0}
.error{color:#b00020;font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.note{background:#fff4ce;border:1px solid #e0c060;padding:4px 8px;display:inline-block;margin:4px 0}
.lanes{position:relative;background:#fff;border:1px solid #ddd}
.lane{position:relative;height:14px;border-bottom:1px solid #eee}
.lane a{position:absolute;top:2px;height:10px;min-width:2px;display:block}
.lane-label{position:absolute;left:-4px;transform:translateX(-100%);font-size:10px;color:#888}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #eee;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600;font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.cat{white-space:nowrap;max-width:16em;overflow:hidden;text-overflow:ellipsis}
td.track{width:30%;min-width:160px;position:relative;overflow:hidden}
.bar{position:relative;height:10px;min-width:2px;margin-top:4px}
.nested{opacity:.45;outline:1px dashed #333}
.concurrent{outline:1px solid #000}
.unfinished{background-image:repeating-linear-gradient(45deg,transparent 0 4px,rgba(255,255,255,.6) 4px 8px)}
.failed{box-shadow:0 0 0 2px #b00020}
.unreported{box-shadow:0 0 0 1px #888}
tr.action:target{background:#fff4ce}
td.detail{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
td.detail summary{cursor:pointer;list-style-position:outside}
td.detail pre{white-space:pre-wrap;word-break:break-all;margin:4px 0;background:#f6f6f6;padding:4px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.flag{font-size:11px;padding:0 4px;border-radius:3px;background:#eee;margin-left:4px}
.flag.bad{background:#fde2e1;color:#b00020}
";

/// Appends `text` escaped for HTML text and attribute values. Bidirectional
/// overrides and isolates, and control characters other than newline and
/// tab, are shown as `[U+…]` so that they cannot reorder what is shown.
pub(super) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "[U+{:04X}]", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `text` escaped for HTML.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    escape_into(&mut out, text);
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Distinct colours for the categories of a page, costliest first.
const PALETTE: [&str; 10] = [
    "#d6336c", "#1c7ed6", "#37b24d", "#f59f00", "#7048e8", "#0ca678", "#e8590c", "#ae3ec9",
    "#1098ad", "#74b816",
];

/// The colour of each category on one page: the palette's, in the order
/// of the table per category, then one derived from the name.
struct Palette<'a>(HashMap<&'a str, &'static str>);

impl<'a> Palette<'a> {
    fn new(categories: &'a [crate::CategoryStats]) -> Palette<'a> {
        Palette(
            categories
                .iter()
                .zip(PALETTE)
                .map(|(stats, colour)| (stats.category(), colour))
                .collect(),
        )
    }

    fn colour(&self, category: &str) -> String {
        match self.0.get(category) {
            Some(colour) => (*colour).to_owned(),
            None => colour(category),
        }
    }
}

/// A colour derived from the category's name, the same on every page.
fn colour(category: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
    let hash = category.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("hsl({},62%,52%)", hash % 360)
}

/// The share of `span` at `at`, in percent with two decimals.
fn percent(at: Duration, span: Duration) -> String {
    let span = span.as_nanos().max(1);
    let hundredths = (at.as_nanos().saturating_mul(10_000) / span).min(10_000);
    format!("{}.{:02}%", hundredths / 100, hundredths % 100)
}

impl Report {
    /// The report as one self-contained HTML page, for people: the request
    /// line and summary line, a waterfall of the actions on the request's
    /// time axis (concurrent actions on lanes of their own, nesting
    /// indented, a colour per category; hover a bar for its detail and
    /// duration, click a row for the whole detail, outcome and call site),
    /// a table per category, the repeated statements (N+1 candidates), the
    /// violations and the dropped count.
    ///
    /// The page needs no network and runs no script: its
    /// Content-Security-Policy forbids both, and every string from the
    /// timeline is escaped — a detail holding `<script>` shows as text.
    /// It draws at most the first 1,000 actions and says so when there are
    /// more; the JSON report ([`to_json`](Self::to_json)) has them all.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT '<script>alert(1)</script>'").unwrap().finish();
    /// let page = timeline.report().to_html();
    /// assert!(page.starts_with("<!DOCTYPE html>"));
    /// assert!(page.contains("SELECT &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;"));
    /// assert!(!page.contains("<script"));
    /// ```
    pub fn to_html(&self) -> String {
        self.html_page("")
    }

    /// The page, with `banner` (HTML the caller made safe) above the
    /// header: what the viewer adds to link back and mark a live request.
    pub(crate) fn html_page(&self, banner: &str) -> String {
        let shown = &self.actions[..self.actions.len().min(MAX_ROWS)];
        let details: usize = shown.iter().map(|a| a.detail().len()).sum();
        let mut out =
            String::with_capacity(8_192 + details.min(DETAIL_BUDGET) * 2 + shown.len() * 900);
        let palette = Palette::new(self.summary.categories());
        self.head(&mut out, banner);
        self.waterfall(&mut out, shown, &palette);
        self.categories(&mut out, &palette);
        self.repeated(&mut out);
        self.problems(&mut out);
        out.push_str("</body></html>\n");
        out
    }

    fn head(&self, out: &mut String, banner: &str) {
        let title = match &self.request {
            Some(request) => format!("{} {}", request.method(), one_line(request.path(), 200)),
            None => format!("Timeline {}", self.id),
        };
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
        out.push_str(
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>",
        );
        escape_into(out, &title);
        out.push_str(" — timeline</title>\n<style>");
        out.push_str(STYLE);
        out.push_str("</style></head>\n<body>\n<header>\n");
        if !banner.is_empty() {
            out.push_str("<p class=\"meta\" id=\"banner\">");
            out.push_str(banner);
            out.push_str("</p>\n");
        }
        out.push_str("<h1 id=\"request-line\">");
        escape_into(out, &title);
        if let Some(request) = &self.request {
            if let Some(status) = request.status() {
                let _ = write!(out, " → {status}");
            }
            if let Some(reason) = request.reason() {
                out.push_str(" <span class=\"flag bad\">");
                escape_into(out, &reason.to_string());
                out.push_str("</span>");
            }
        }
        out.push_str("</h1>\n<p class=\"summary\" id=\"summary-line\">");
        escape_into(out, &self.summary.to_string());
        out.push_str("</p>\n<p class=\"meta\">");
        escape_into(out, &self.id);
        out.push_str(" · started ");
        out.push_str(&rfc3339(self.baseline));
        out.push_str(" · ");
        out.push_str(&millis(self.duration));
        out.push_str("</p>\n");
        if let Some(error) = self.request.as_ref().and_then(|r| r.error()) {
            out.push_str("<p class=\"error\" id=\"request-error\">");
            escape_into(out, &one_line(error, 4_000));
            out.push_str("</p>\n");
        }
        out.push_str("</header>\n");
    }

    fn waterfall(&self, out: &mut String, shown: &[Action], palette: &Palette<'_>) {
        let span = shown
            .iter()
            .map(Action::end)
            .max()
            .unwrap_or_default()
            .max(self.duration);
        let lanes = super::lanes::assign(shown);
        let depths = depths(shown);
        let widest = lanes.iter().copied().max().unwrap_or(0);
        let _ = write!(
            out,
            "<section id=\"waterfall\"><h2>Waterfall <span class=\"meta\">0 – {}",
            millis(span)
        );
        if widest > 0 {
            let _ = write!(out, " · {} lanes", widest + 1);
        }
        out.push_str("</span></h2>\n");
        if self.actions.len() > shown.len() {
            let _ = writeln!(
                out,
                "<p class=\"note\" id=\"cut-note\">Showing the first {} of {} actions; the categories, \
                 repeated statements and the JSON report count them all.</p>",
                shown.len(),
                self.actions.len()
            );
        }
        if shown.is_empty() {
            out.push_str("<p class=\"meta\">No actions.</p></section>\n");
            return;
        }
        // The lanes at a glance: the sequence (lane 0, nesting actions
        // behind their children) and each concurrent lane.
        out.push_str("<div class=\"lanes\" id=\"lanes\">\n");
        for lane in 0..=widest {
            let _ = write!(out, "<div class=\"lane\" data-lane=\"{lane}\">");
            for (n, action) in shown.iter().enumerate().filter(|(n, _)| lanes[*n] == lane) {
                let _ = write!(
                    out,
                    "<a href=\"#a{n}\" class=\"seg{}\" style=\"left:{};width:{};background:{}\" title=\"",
                    bar_classes(action),
                    percent(action.start(), span),
                    percent(action.duration_or_elapsed(), span),
                    palette.colour(action.category())
                );
                tooltip(out, action);
                out.push_str("\"></a>");
            }
            out.push_str("</div>\n");
        }
        out.push_str("</div>\n");

        out.push_str(
            "<table id=\"actions\"><thead><tr><th>#</th><th>start</th><th>duration</th>\
             <th>lane</th><th>category</th><th>time</th><th>detail (click for all)</th></tr></thead><tbody>\n",
        );
        let mut budget = DETAIL_BUDGET;
        for (n, action) in shown.iter().enumerate() {
            let _ = write!(
                out,
                "<tr class=\"action\" id=\"a{n}\"><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"cat\" style=\"padding-left:{}em\">\
                 <span class=\"swatch\" style=\"background:{}\"></span>",
                n + 1,
                millis(action.start()),
                millis(action.duration_or_elapsed()),
                lanes[n],
                0.4 + 1.2 * depths[n] as f64,
                palette.colour(action.category())
            );
            escape_into(out, &one_line(action.category(), 40));
            let _ = write!(
                out,
                "</td><td class=\"track\"><div class=\"bar{}\" style=\"margin-left:{};width:{};background:{}\" title=\"",
                bar_classes(action),
                percent(action.start(), span),
                percent(action.duration_or_elapsed(), span),
                palette.colour(action.category())
            );
            tooltip(out, action);
            out.push_str("\"></div></td><td class=\"detail\"><details><summary>");
            escape_into(out, &one_line(action.detail(), ROW_DETAIL_CHARS));
            flags(out, action);
            out.push_str("</summary><pre>");
            let detail = action.detail();
            if detail.len() <= budget || detail.len() <= CUT_DETAIL {
                budget = budget.saturating_sub(detail.len());
                escape_into(out, detail);
                out.push_str("</pre>");
            } else {
                let cut = floor_char_boundary(detail, CUT_DETAIL);
                escape_into(out, &detail[..cut]);
                let _ = write!(
                    out,
                    "</pre><p class=\"note\">… {} more bytes: this page shows 4 MiB of details at most; \
                     the JSON report has the whole detail.</p>",
                    detail.len() - cut
                );
            }
            let _ = write!(
                out,
                "<p class=\"meta\">{} at {} · {}",
                millis(action.duration_or_elapsed()),
                millis(action.start()),
                outcome_label(action.outcome())
            );
            if let Some(error) = error_text(action.outcome()) {
                out.push_str(": <span class=\"error\">");
                escape_into(out, &one_line(error, 2_000));
                out.push_str("</span>");
            }
            out.push_str(" · call site: ");
            match call_site(action) {
                Some(site) => escape_into(out, &site),
                None => out.push_str("not reported"),
            }
            out.push_str("</p>");
            if let Some(backtrace) = action.backtrace() {
                out.push_str("<pre>");
                escape_into(out, &backtrace[..floor_char_boundary(backtrace, 16_384)]);
                out.push_str("</pre>");
            }
            out.push_str("</details></td></tr>\n");
        }
        out.push_str("</tbody></table></section>\n");
    }

    fn categories(&self, out: &mut String, palette: &Palette<'_>) {
        out.push_str(
            "<section id=\"categories\"><h2>By category</h2><table><thead><tr><th>category</th>\
             <th>count</th><th>total</th><th>max</th><th>share</th></tr></thead><tbody>\n",
        );
        for stats in self.summary.categories() {
            out.push_str("<tr><td class=\"cat\"><span class=\"swatch\" style=\"background:");
            out.push_str(&palette.colour(stats.category()));
            out.push_str("\"></span>");
            escape_into(out, &one_line(stats.category(), 80));
            let _ = writeln!(
                out,
                "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{:.1}%</td></tr>",
                stats.count(),
                millis(stats.total()),
                millis(stats.max()),
                100.0 * self.summary.share(stats.total())
            );
        }
        out.push_str("</tbody></table></section>\n");
    }

    fn repeated(&self, out: &mut String) {
        let findings = self.summary.findings();
        out.push_str(
            "<section id=\"n-plus-one\"><h2>Findings: repeated statements (N+1 candidates)</h2>\n",
        );
        if findings.is_empty() {
            out.push_str("<p class=\"meta\">None: no statement was repeated.</p></section>\n");
            return;
        }
        out.push_str(
            "<table><thead><tr><th>count</th><th>total</th><th>kind</th><th>category</th>\
             <th>statement</th><th>call sites</th></tr></thead><tbody>\n",
        );
        for finding in findings.iter().take(MAX_LISTED) {
            let _ = write!(
                out,
                "<tr class=\"repeated\"><td class=\"num\">{}×</td><td class=\"num\">{}</td>\
                 <td><span class=\"flag\">{}</span></td><td class=\"cat\">",
                finding.count(),
                millis(finding.total()),
                finding.kind()
            );
            escape_into(out, &one_line(finding.category(), 40));
            out.push_str("</td><td class=\"detail\"><details><summary>");
            escape_into(out, &one_line(finding.statement(), ROW_DETAIL_CHARS));
            out.push_str("</summary><pre>");
            escape_into(
                out,
                &finding.statement()[..floor_char_boundary(finding.statement(), CUT_DETAIL)],
            );
            out.push_str("</pre><p class=\"meta\">e.g. ");
            escape_into(out, &one_line(finding.example(), 400));
            out.push_str("</p></details></td><td class=\"detail\">");
            let sites = finding.call_sites();
            if sites.is_empty() {
                out.push_str("not reported");
            }
            for (n, site) in sites.iter().take(MAX_SITES).enumerate() {
                if n > 0 {
                    out.push_str("<br>");
                }
                escape_into(out, &one_line(&site.call_site().to_string(), 300));
                let _ = write!(out, " ×{}", site.count());
            }
            if sites.len() > MAX_SITES {
                let _ = write!(out, "<br>{} more", sites.len() - MAX_SITES);
            }
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody></table>");
        if findings.len() > MAX_LISTED {
            let _ = write!(
                out,
                "<p class=\"note\">{} more findings in the JSON report.</p>",
                findings.len() - MAX_LISTED
            );
        }
        out.push_str("</section>\n");
    }

    fn problems(&self, out: &mut String) {
        let _ = write!(
            out,
            "<section id=\"problems\"><h2>Violations and dropped actions</h2>\n\
             <p id=\"dropped\">{} actions not stored (max_actions or max_bytes reached) · \
             {} overlaps noted</p>\n",
            self.dropped,
            self.violations.len()
        );
        if self.late > 0 {
            let _ = writeln!(
                out,
                "<p id=\"late\">{} actions arrived after this report was made (late): \
                 counted, not on this timeline</p>",
                self.late
            );
        }
        if !self.violations.is_empty() {
            out.push_str("<ul id=\"violations\">\n");
            for violation in self.violations.iter().take(MAX_LISTED) {
                let _ = write!(out, "<li>at {}: ", millis(violation.at()));
                escape_into(out, &one_line(&violation.to_string(), 600));
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
            if self.violations.len() > MAX_LISTED {
                let _ = write!(
                    out,
                    "<p class=\"note\">{} more violations in the JSON report.</p>",
                    self.violations.len() - MAX_LISTED
                );
            }
        }
        out.push_str("</section>\n");
    }
}

/// The classes of an action's bar after its first, each with a leading space.
fn bar_classes(action: &Action) -> String {
    let mut classes = String::new();
    if action.is_nested() {
        classes.push_str(" nested");
    }
    if action.is_concurrent() {
        classes.push_str(" concurrent");
    }
    if action.duration().is_none() {
        classes.push_str(" unfinished");
    }
    match action.outcome() {
        crate::Outcome::Ok => {}
        crate::Outcome::NotReported => classes.push_str(" unreported"),
        _ => classes.push_str(" failed"),
    }
    classes
}

/// A bar's tooltip: category, duration, start and the start of the detail.
fn tooltip(out: &mut String, action: &Action) {
    escape_into(out, &one_line(action.category(), 40));
    let _ = write!(
        out,
        " · {} at {}",
        millis(action.duration_or_elapsed()),
        millis(action.start())
    );
    if action.duration().is_none() {
        out.push_str(" (unfinished: ends now)");
    }
    out.push('\n');
    escape_into(out, &one_line(action.detail(), TITLE_DETAIL_CHARS));
}

/// Marks after a row's detail: nesting, concurrent, unfinished, failed.
fn flags(out: &mut String, action: &Action) {
    if action.is_nested() {
        out.push_str("<span class=\"flag\">nesting</span>");
    }
    if action.is_concurrent() {
        out.push_str("<span class=\"flag\">concurrent</span>");
    }
    if action.duration().is_none() {
        out.push_str("<span class=\"flag bad\">unfinished: ends now</span>");
    }
    match action.outcome() {
        crate::Outcome::Ok => {}
        // Not a failure: the source did not say, and the page says so.
        crate::Outcome::NotReported => {
            out.push_str("<span class=\"flag\">outcome not reported</span>");
        }
        outcome => {
            out.push_str("<span class=\"flag bad\">");
            out.push_str(outcome_label(outcome));
            out.push_str("</span>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_bidi_controls_are_escaped() {
        assert_eq!(
            escape("<b a=\"1\" b='2'>&\u{202E}x\u{1}\ny"),
            "&lt;b a=&quot;1&quot; b=&#39;2&#39;&gt;&amp;[U+202E]x[U+0001]\ny"
        );
    }

    #[test]
    fn percent_is_bounded() {
        assert_eq!(
            percent(Duration::from_millis(1), Duration::from_millis(3)),
            "33.33%"
        );
        assert_eq!(
            percent(Duration::from_secs(9), Duration::from_secs(1)),
            "100.00%"
        );
        assert_eq!(percent(Duration::ZERO, Duration::ZERO), "0.00%");
    }

    #[test]
    fn a_category_keeps_its_colour() {
        assert_eq!(colour("SQL-main"), colour("SQL-main"));
        assert_ne!(colour("SQL-main"), colour("HTTP-get"));
    }
}
