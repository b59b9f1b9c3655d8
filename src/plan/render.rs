//! Aligned plain-text tables for the `plan` command's output.

use std::fmt::Write;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A text table: a header row, then rows, every column padded to its widest cell.
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            columns: columns.iter().map(|(h, a)| ((*h).to_owned(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank and extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    /// Renders with two spaces between columns and no trailing spaces.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.columns[c].0.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.clone()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in cells.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if c > 0 {
                    line.push_str("  ");
                }
                match self.columns[c].1 {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                }
            }
            // Infallible: writing to a String.
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// Formats with a fixed number of decimals.
pub fn fixed(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// The last column of a size table: the pick, another size that fits, or nothing.
pub fn fit_mark(name: &str, pick: Option<&str>, fits: bool, headroom_pct: f64) -> String {
    if Some(name) == pick {
        format!("<- smallest under {}% CPU", fixed(headroom_pct, 0))
    } else if fits {
        "ok".to_owned()
    } else {
        String::new()
    }
}

/// Formats a signed percentage error like "+3.2%".
pub fn signed_pct(v: f64) -> String {
    format!("{v:+.1}%")
}

/// The per-resource error summary under a fit or leave-one-out table: median and worst absolute
/// error of CPU, memory and bandwidth out/in, and which row was worst (`worst_header` names it).
pub fn error_summary_table(
    worst_header: &str,
    cpu: &super::model::ErrorSummary,
    memory: &super::model::ErrorSummary,
    bandwidth_out: &super::model::ErrorSummary,
    bandwidth_in: &super::model::ErrorSummary,
) -> String {
    let mut s = TextTable::new(&[
        ("resource", Align::Left),
        ("median |err|", Align::Right),
        ("worst |err|", Align::Right),
        (worst_header, Align::Right),
    ]);
    for (name, e) in [
        ("cpu", cpu),
        ("memory", memory),
        ("bandwidth out", bandwidth_out),
        ("bandwidth in", bandwidth_in),
    ] {
        s.row(vec![
            name.to_owned(),
            format!("{}%", fixed(e.median_abs_pct, 1)),
            format!("{}%", fixed(e.worst_abs_pct, 1)),
            e.worst_row.to_string(),
        ]);
    }
    s.render()
}

/// The fitted coefficients of a capacity model, one row per term of each resource's linear model.
pub fn coefficients_table(m: &super::model::CapacityModel) -> String {
    let mut table = TextTable::new(&[
        ("model", Align::Left),
        ("term", Align::Left),
        ("coefficient", Align::Right),
        ("unit", Align::Left),
    ]);
    for (name, lin) in [
        ("cpu", &m.cpu),
        ("memory", &m.memory),
        ("bandwidth out", &m.bandwidth_out),
        ("bandwidth in", &m.bandwidth_in),
    ] {
        for t in &lin.terms {
            table.row(vec![
                name.to_owned(),
                t.name.to_owned(),
                format!("{:.4e}", t.coefficient),
                t.unit.to_owned(),
            ]);
        }
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = TextTable::new(&[("name", Align::Left), ("n", Align::Right)]);
        t.row(vec!["a".into(), "100".into()]);
        t.row(vec!["long name".into(), "5".into()]);
        assert_eq!(
            t.render(),
            "name         n\na          100\nlong name    5\n"
        );
    }
}
