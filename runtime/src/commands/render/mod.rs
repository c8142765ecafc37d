//! Channel renderings of an [`Answer`](super::Answer): plain text (CLI, API `text`), Telegram
//! MarkdownV2, Slack Block Kit. Shared here: laying out tables and wrapping long lines.

pub mod plain;
pub mod slack;
pub mod telegram;

use super::Table;

/// Longest cell a narrowed table keeps; longer cells end in `…`.
const NARROW_CELL_CHARS: usize = 14;
/// A last column narrower than this is dropped rather than cut.
const MIN_CUT_COLUMN: usize = 6;

fn width(text: &str) -> usize {
    text.chars().count()
}

fn cut(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A table laid out in monospace, at most `max_width` characters a line when given (columns are
/// cut, then dropped from the right; two-column tables become indented pairs instead).
/// Returns the lines and the headers of the columns left out.
pub(crate) fn layout_table(table: &Table, max_width: Option<usize>) -> (Vec<String>, Vec<String>) {
    let columns = table
        .rows
        .iter()
        .map(Vec::len)
        .chain(std::iter::once(table.headers.len()))
        .max()
        .unwrap_or(0);
    let mut grid: Vec<Vec<String>> = std::iter::once(&table.headers)
        .chain(table.rows.iter())
        .map(|row| {
            (0..columns)
                .map(|index| row.get(index).cloned().unwrap_or_default())
                .collect()
        })
        .collect();
    let widths = |grid: &[Vec<String>], columns: usize| -> Vec<usize> {
        (0..columns)
            .map(|index| grid.iter().map(|row| width(&row[index])).max().unwrap_or(0))
            .collect()
    };
    let total = |widths: &[usize]| widths.iter().sum::<usize>() + widths.len().saturating_sub(1);
    let mut kept = columns;
    let mut dropped = Vec::new();
    if let Some(max) = max_width
        && total(&widths(&grid, kept)) > max
    {
        if columns == 2 {
            return (pairs(&grid[1..], max), dropped);
        }
        for row in &mut grid {
            for cell in row.iter_mut() {
                *cell = cut(cell, NARROW_CELL_CHARS);
            }
        }
        loop {
            let current = widths(&grid, kept);
            if total(&current) <= max || kept == 0 {
                break;
            }
            let others = total(&current[..kept - 1]) + usize::from(kept > 1);
            let room = max.saturating_sub(others);
            if room >= MIN_CUT_COLUMN || kept == 1 {
                for row in &mut grid {
                    row[kept - 1] = cut(&row[kept - 1], room.max(1));
                }
                break;
            }
            kept -= 1;
            dropped.push(table.headers.get(kept).cloned().unwrap_or_default());
        }
        dropped.reverse();
    }
    let final_widths = widths(&grid, kept);
    // Columns of numbers are right-aligned (header included), the first column never.
    let numeric: Vec<bool> = (0..kept)
        .map(|index| {
            index > 0
                && grid.iter().skip(1).any(|row| {
                    row[index]
                        .trim_start_matches(['+', '-'])
                        .starts_with(|c: char| c.is_ascii_digit())
                })
        })
        .collect();
    let lines = grid
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (index, cell) in row.iter().take(kept).enumerate() {
                if index > 0 {
                    line.push(' ');
                }
                let pad = final_widths[index].saturating_sub(width(cell));
                if numeric[index] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect();
    (lines, dropped)
}

/// Two-column rows as "first" then "  second" wrapped, for screens too narrow for both.
fn pairs(rows: &[Vec<String>], max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for row in rows {
        let first = row.first().map(String::as_str).unwrap_or_default();
        let second = row.get(1).map(String::as_str).unwrap_or_default();
        lines.extend(wrap(first, max));
        lines.extend(
            wrap(second, max.saturating_sub(2).max(1))
                .into_iter()
                .map(|line| format!("  {line}")),
        );
    }
    lines
}

/// Splits a text into lines of at most `max` characters, at spaces where it can; existing line
/// breaks are kept.
pub(crate) fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for source in text.split('\n') {
        let mut line = String::new();
        for word in source.split(' ') {
            let mut word = word.to_owned();
            // A word longer than a line is cut where it must be.
            while width(&word) > max {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(max).collect();
                word = word.chars().skip(max).collect();
                lines.push(head);
            }
            if line.is_empty() {
                line = word;
            } else if width(&line) + 1 + width(&word) <= max {
                line.push(' ');
                line.push_str(&word);
            } else {
                lines.push(std::mem::replace(&mut line, word));
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests;
