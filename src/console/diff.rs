//! A line diff (the `similar` crate's Myers diff), to show what a
//! transformation changed in a request.

use similar::{ChangeTag, TextDiff};

/// Past this many lines on a side the diff is not shown: the page would be
/// too long to read, and the work grows with both sides.
const MAX_LINES: usize = 2_000;

#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The lines of `before` and `after` in order, each kept, removed or added
/// (a changed line reads as its old form, then its new one); None when
/// either is too long to compare.
pub fn lines<'a>(before: &'a str, after: &'a str) -> Option<Vec<Line<'a>>> {
    let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    if old.len() > MAX_LINES || new.len() > MAX_LINES {
        return None;
    }
    let diff = TextDiff::from_slices(&old, &new);
    let shown = diff.iter_all_changes().map(|change| {
        // By index, so the lines borrow from `before` and `after`.
        let (old_line, new_line) = (change.old_index(), change.new_index());
        match change.tag() {
            ChangeTag::Equal => Line::Same(old[old_line.expect("an equal line is old")]),
            ChangeTag::Delete => Line::Removed(old[old_line.expect("a removed line is old")]),
            ChangeTag::Insert => Line::Added(new[new_line.expect("an added line is new")]),
        }
    });
    Some(shown.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_removed_and_added_lines_in_order() {
        let diff = lines("a\nb\nc", "a\nx\nc\nd").unwrap();
        assert_eq!(
            diff,
            vec![
                Line::Same("a"),
                Line::Removed("b"),
                Line::Added("x"),
                Line::Same("c"),
                Line::Added("d"),
            ]
        );
    }

    #[test]
    fn too_long_to_compare() {
        let long = "x\n".repeat(MAX_LINES + 1);
        assert!(lines(&long, "x").is_none());
    }
}
