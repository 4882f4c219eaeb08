//! A line diff (longest common subsequence), to show what a transformation
//! changed in a request.

/// Past this many lines on a side the table would be too large to keep
/// (n × m cells): the diff is not computed.
const MAX_LINES: usize = 2_000;

#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The lines of `before` and `after` in order, each kept, removed or added;
/// None when either is too long to compare.
pub fn lines<'a>(before: &'a str, after: &'a str) -> Option<Vec<Line<'a>>> {
    let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    if old.len() > MAX_LINES || new.len() > MAX_LINES {
        return None;
    }
    // common[i][j]: the longest common run of old[i..] and new[j..].
    let mut common = vec![vec![0u32; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            out.push(Line::Same(old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < old.len() && (j == new.len() || common[i + 1][j] >= common[i][j + 1]) {
            // A changed line reads as its old form, then its new one.
            out.push(Line::Removed(old[i]));
            i += 1;
        } else {
            out.push(Line::Added(new[j]));
            j += 1;
        }
    }
    Some(out)
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
