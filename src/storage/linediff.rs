//! A line diff (Myers' algorithm, linear space) whose effort is bounded by
//! a count of steps, not by time: its result is a function of its input
//! alone, so the hunks a commit stores (and with them how finely later
//! merges can tell edits apart) never depend on how loaded the machine was.
//!
//! Past the budget it falls back deterministically: every region not yet
//! split becomes one change (after trimming its common ends), which still
//! turns the old lines into the new ones, only less finely.

use std::ops::Range;

/// Steps (a diagonal tried or a pair of lines compared) one diff may take
/// before it falls back. Measured with the rows of a commit (compared by
/// hash), a step costs 6 ns while the rows fit in the caches and up to 20 ns
/// when they do not, so the budget caps a diff at roughly 0.1 to 0.4 s, about
/// the time bound it replaces. A typical edit takes far less: the work grows
/// with the lines times the edits; 1,000 rows changed apart from each other
/// among 100,000 take 3 million steps (70 ms, hashing included). The budget
/// is reached by a region rewritten almost everywhere (a third of 10,000
/// rows changed takes 22 million), where the fallback (one change) costs
/// merges little: nearly every row of it changed anyway.
pub const WORK_BUDGET: u64 = 20_000_000;

/// A changed region: `old` lines replaced by `new` lines (either may be
/// empty). Changes are in order, and no two touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub old: Range<usize>,
    pub new: Range<usize>,
}

/// The changes that turn `old` into `new`: minimal unless the work budget
/// ran out.
pub fn diff<T: PartialEq>(old: &[T], new: &[T]) -> Vec<Change> {
    diff_with_budget(old, new, WORK_BUDGET)
}

/// [`diff`] with a given budget of steps.
pub fn diff_with_budget<T: PartialEq>(old: &[T], new: &[T], budget: u64) -> Vec<Change> {
    let max_d = max_d(old.len(), new.len());
    let mut d = Diff {
        old,
        new,
        vf: V::new(max_d),
        vb: V::new(max_d),
        work: 0,
        budget,
        out: Vec::new(),
    };
    d.conquer(0..old.len(), 0..new.len());
    d.out
}

fn max_d(n: usize, m: usize) -> usize {
    (n + m).div_ceil(2) + 1
}

/// Furthest x reached on each diagonal `k` (which may be negative).
struct V {
    offset: isize,
    v: Vec<usize>,
}

impl V {
    fn new(max_d: usize) -> V {
        V {
            offset: max_d as isize,
            v: vec![0; 2 * max_d + 1],
        }
    }
}

impl std::ops::Index<isize> for V {
    type Output = usize;
    fn index(&self, k: isize) -> &usize {
        &self.v[(k + self.offset) as usize]
    }
}

impl std::ops::IndexMut<isize> for V {
    fn index_mut(&mut self, k: isize) -> &mut usize {
        &mut self.v[(k + self.offset) as usize]
    }
}

struct Diff<'a, T> {
    old: &'a [T],
    new: &'a [T],
    vf: V,
    vb: V,
    work: u64,
    budget: u64,
    out: Vec<Change>,
}

impl<T: PartialEq> Diff<'_, T> {
    fn emit(&mut self, old: Range<usize>, new: Range<usize>) {
        if old.is_empty() && new.is_empty() {
            return;
        }
        match self.out.last_mut() {
            Some(last) if last.old.end == old.start && last.new.end == new.start => {
                last.old.end = old.end;
                last.new.end = new.end;
            }
            _ => self.out.push(Change { old, new }),
        }
    }

    /// Common lines from the front of the two ranges, counted as work.
    fn prefix(&mut self, old: Range<usize>, new: Range<usize>) -> usize {
        let n = self.old[old]
            .iter()
            .zip(&self.new[new])
            .take_while(|(a, b)| a == b)
            .count();
        self.work += n as u64;
        n
    }

    /// Common lines from the back of the two ranges, counted as work.
    fn suffix(&mut self, old: Range<usize>, new: Range<usize>) -> usize {
        let n = self.old[old]
            .iter()
            .rev()
            .zip(self.new[new].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        self.work += n as u64;
        n
    }

    fn conquer(&mut self, mut old: Range<usize>, mut new: Range<usize>) {
        let p = self.prefix(old.clone(), new.clone());
        old.start += p;
        new.start += p;
        let s = self.suffix(old.clone(), new.clone());
        old.end -= s;
        new.end -= s;
        if old.is_empty() || new.is_empty() {
            self.emit(old, new);
            return;
        }
        match self.middle_snake(old.clone(), new.clone()) {
            Some((x, y)) => {
                self.conquer(old.start..x, new.start..y);
                self.conquer(x..old.end, y..new.end);
            }
            // Out of budget: the region as one change.
            None => self.emit(old, new),
        }
    }

    /// The start of the middle snake of an optimal path through the two
    /// ranges (both non-empty, their ends differing), searched from both
    /// corners at once; `None` once the work budget is spent.
    fn middle_snake(&mut self, old: Range<usize>, new: Range<usize>) -> Option<(usize, usize)> {
        let (n, m) = (old.len() as isize, new.len() as isize);
        let delta = n - m;
        let odd = delta & 1 == 1;
        self.vf[1] = 0;
        self.vb[1] = 0;
        for d in 0..max_d(old.len(), new.len()) as isize {
            if self.work > self.budget {
                return None;
            }
            self.work += 2 * d as u64 + 2;
            for k in (-d..=d).rev().step_by(2) {
                let mut x = if k == -d || (k != d && self.vf[k - 1] < self.vf[k + 1]) {
                    self.vf[k + 1]
                } else {
                    self.vf[k - 1] + 1
                } as isize;
                let (x0, y0) = (x, x - k);
                if x < n && (0..m).contains(&y0) {
                    let a = old.start + x as usize;
                    let b = new.start + y0 as usize;
                    x += self.prefix(a..old.end, b..new.end) as isize;
                }
                self.vf[k] = x as usize;
                if odd && (k - delta).abs() < d && x + self.vb[delta - k] as isize >= n {
                    return Some((old.start + x0 as usize, new.start + y0 as usize));
                }
            }
            for k in (-d..=d).rev().step_by(2) {
                let mut x = if k == -d || (k != d && self.vb[k - 1] < self.vb[k + 1]) {
                    self.vb[k + 1]
                } else {
                    self.vb[k - 1] + 1
                } as isize;
                let mut y = x - k;
                if x < n && (0..m).contains(&y) {
                    let a = old.start..old.start + (n - x) as usize;
                    let b = new.start..new.start + (m - y) as usize;
                    let s = self.suffix(a, b) as isize;
                    x += s;
                    y += s;
                }
                self.vb[k] = x as usize;
                if !odd && (k - delta).abs() <= d && x + self.vf[delta - k] as isize >= n {
                    return Some((old.start + (n - x) as usize, new.start + (m - y) as usize));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Applies `changes` to `old`, taking replacements from `new`.
    fn apply(old: &[u8], new: &[u8], changes: &[Change]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for c in changes {
            out.extend_from_slice(&old[at..c.old.start]);
            out.extend_from_slice(&new[c.new.clone()]);
            at = c.old.end;
        }
        out.extend_from_slice(&old[at..]);
        out
    }

    /// Lines deleted plus lines inserted by a minimal diff, by dynamic
    /// programming over the longest common subsequence.
    fn min_edits(old: &[u8], new: &[u8]) -> usize {
        let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
        for i in (0..old.len()).rev() {
            for j in (0..new.len()).rev() {
                lcs[i][j] = if old[i] == new[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        old.len() + new.len() - 2 * lcs[0][0]
    }

    /// Checks that the changes are ordered, apart, and turn old into new,
    /// with the unchanged lines between them really equal.
    fn check(old: &[u8], new: &[u8], changes: &[Change]) {
        for w in changes.windows(2) {
            assert!(w[0].old.end <= w[1].old.start && w[0].new.end <= w[1].new.start);
            assert!(w[0].old.end < w[1].old.start || w[0].new.end < w[1].new.start);
            let gap = w[1].old.start - w[0].old.end;
            assert_eq!(gap, w[1].new.start - w[0].new.end);
        }
        assert_eq!(apply(old, new, changes), new);
    }

    fn edits(changes: &[Change]) -> usize {
        changes.iter().map(|c| c.old.len() + c.new.len()).sum()
    }

    #[test]
    fn small_cases() {
        let d = diff(b"abcabba", b"cbabac");
        check(b"abcabba", b"cbabac", &d);
        assert_eq!(edits(&d), 5);
        assert_eq!(diff(b"abc", b"abc"), []);
        assert_eq!(
            diff(b"", b"ab"),
            [Change {
                old: 0..0,
                new: 0..2
            }]
        );
        assert_eq!(
            diff(b"0123", b"0193"),
            [Change {
                old: 2..3,
                new: 2..3
            }]
        );
    }

    #[test]
    fn out_of_budget_the_rest_is_one_change() {
        let old = b"axbxcxdxe";
        let new = b"aybyc-dye";
        let d = diff_with_budget(old, new, 0);
        assert_eq!(
            d,
            [Change {
                old: 1..8,
                new: 1..8
            }]
        );
        let d = diff_with_budget(old, new, 10);
        check(old, new, &d);
        assert_eq!(d, diff_with_budget(old, new, 10));
    }

    proptest! {
        #[test]
        fn minimal_within_budget(
            old in proptest::collection::vec(0u8..4, 0..40),
            new in proptest::collection::vec(0u8..4, 0..40),
        ) {
            let d = diff(&old, &new);
            check(&old, &new, &d);
            prop_assert_eq!(edits(&d), min_edits(&old, &new));
        }

        #[test]
        fn edits_of_a_sequence_are_minimal(
            old in proptest::collection::vec(0u8..20, 0..200),
            cuts in proptest::collection::vec((0usize..200, 0usize..4, proptest::collection::vec(0u8..20, 0..4)), 0..6),
        ) {
            let mut new = old.clone();
            for (at, del, ins) in cuts {
                let at = at.min(new.len());
                let end = (at + del).min(new.len());
                new.splice(at..end, ins);
            }
            let d = diff(&old, &new);
            check(&old, &new, &d);
            prop_assert_eq!(edits(&d), min_edits(&old, &new));
        }

        #[test]
        fn any_budget_is_deterministic_and_correct(
            old in proptest::collection::vec(0u8..4, 0..60),
            new in proptest::collection::vec(0u8..4, 0..60),
            budget in 0u64..400,
        ) {
            let d = diff_with_budget(&old, &new, budget);
            check(&old, &new, &d);
            prop_assert_eq!(&d, &diff_with_budget(&old, &new, budget));
        }
    }
}
