//! A small table model rendered three ways (aligned text, Markdown, escaped HTML), plus the number
//! formats every renderer shares, so the terminal, report.md and report.html never disagree.

/// Rows of cells under a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub headers: Vec<String>,
    /// Rows; each as long as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < w.len() {
                    w[i] = w[i].max(c.chars().count());
                }
            }
        }
        w
    }

    /// Space-aligned columns for a terminal.
    pub fn to_text(&self) -> String {
        let w = self.widths();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<width$}", width = w.get(i).copied().unwrap_or(0)))
                .collect();
            padded.join("  ").trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.headers);
        let rule: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
        out += &line(&rule);
        for r in &self.rows {
            out += &line(r);
        }
        out
    }

    /// A GitHub-flavoured Markdown table; `|` in cells is escaped.
    pub fn to_markdown(&self) -> String {
        let cell = |c: &String| c.replace('|', "\\|");
        let line = |cells: &[String]| {
            format!(
                "| {} |\n",
                cells.iter().map(cell).collect::<Vec<_>>().join(" | ")
            )
        };
        let mut out = line(&self.headers);
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for r in &self.rows {
            out += &line(r);
        }
        out
    }

    /// An HTML `<table>`; every cell is escaped.
    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for h in &self.headers {
            out += &format!("<th>{}</th>", escape_html(h));
        }
        out += "</tr></thead>\n<tbody>\n";
        for r in &self.rows {
            out += "<tr>";
            for c in r {
                out += &format!("<td>{}</td>", escape_html(c));
            }
            out += "</tr>\n";
        }
        out + "</tbody>\n</table>\n"
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// Bits per second the way the published tables write them (`22Mbps`, `1.33Gbps`, `890kbps`), with
/// three significant digits.
pub fn bps(v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    let (scaled, unit) = if v >= 1e9 {
        (v / 1e9, "Gbps")
    } else if v >= 1e6 {
        (v / 1e6, "Mbps")
    } else if v >= 1e3 {
        (v / 1e3, "kbps")
    } else {
        (v, "bps")
    };
    format!("{}{unit}", sig3(scaled))
}

/// Bytes as GB (10⁹, as the tables write memory), two decimals.
pub fn gigabytes(v: Option<u64>) -> String {
    v.map_or("–".into(), |b| format!("{:.2}GB", b as f64 / 1e9))
}

/// A µs value as milliseconds with µs precision kept (`12.345 ms`), or seconds above 10 s.
pub fn micros(v: Option<u64>) -> String {
    match v {
        None => "–".into(),
        Some(us) if us >= 10_000_000 => format!("{:.3} s", us as f64 / 1e6),
        Some(us) => format!("{:.3} ms", us as f64 / 1e3),
    }
}

/// A fraction as a percentage with three decimals.
pub fn fraction_percent(v: Option<f64>) -> String {
    v.map_or("–".into(), |f| format!("{:.3}%", f * 100.0))
}

/// A number with three significant digits (no exponent).
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// An optional float with three significant digits.
pub fn opt3(v: Option<f64>) -> String {
    v.map_or("–".into(), sig3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_the_published_tables() {
        assert_eq!(bps(Some(22e6)), "22Mbps");
        assert_eq!(bps(Some(1.33e9)), "1.33Gbps");
        assert_eq!(bps(Some(5.25e6)), "5.25Mbps");
        assert_eq!(bps(Some(125.4e6)), "125Mbps");
        assert_eq!(bps(None), "–");
        assert_eq!(gigabytes(Some(500_000_000)), "0.50GB");
        assert_eq!(micros(Some(1_234)), "1.234 ms");
    }

    #[test]
    fn every_renderer_escapes_or_aligns() {
        let mut t = Table::new(["a", "b"]);
        t.row(["<script>x</script>", "p|q"]);
        assert!(t.to_html().contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!t.to_html().contains("<script>"));
        assert!(t.to_markdown().contains("p\\|q"));
        let text = t.to_text();
        assert_eq!(text.lines().nth(1).unwrap(), "------------------  ---");
    }
}
