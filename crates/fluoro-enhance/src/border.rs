//! Border handling shared by the spatial filters.

/// Reflect-101 index (`gfedcb|abcdefgh|gfedcba`), OpenCV's default border, for `i` within
/// one image length of the valid range.
#[inline]
pub fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let mut i = i;
    if i < 0 {
        i = -i;
    }
    if i >= n {
        i = 2 * n - 2 - i;
    }
    i.clamp(0, n - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflects_without_repeating_the_edge() {
        let v: Vec<usize> = (-3..8).map(|i| reflect101(i, 5)).collect();
        assert_eq!(v, vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
