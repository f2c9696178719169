//! Lanes for drawing: the sequence of actions on lane 0, concurrent ones on
//! lanes of their own beside it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::Action;

/// The lane of each of `actions` (given in start order): 0 for the
/// sequence — non-nesting actions that did not overlap, and nesting ones
/// around them — and 1, 2… for concurrent actions, each on the first lane
/// free at its start. A heap of the lanes' ends keeps this `O(n log n)`
/// however many actions ran side by side.
pub(super) fn assign(actions: &[Action]) -> Vec<usize> {
    let mut ends: BinaryHeap<Reverse<(std::time::Duration, usize)>> = BinaryHeap::new();
    let mut free: BinaryHeap<Reverse<usize>> = BinaryHeap::new();
    let mut lanes_used = 0;
    actions
        .iter()
        .map(|action| {
            if !action.is_concurrent() {
                return 0;
            }
            while let Some(&Reverse((end, lane))) = ends.peek() {
                if end > action.start() {
                    break;
                }
                ends.pop();
                free.push(Reverse(lane));
            }
            let lane = match free.pop() {
                Some(Reverse(lane)) => lane,
                None => {
                    lanes_used += 1;
                    lanes_used
                }
            };
            ends.push(Reverse((action.end(), lane)));
            lane
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn lanes_of(intervals: &[(u64, u64, bool)]) -> Vec<usize> {
        let ms = Duration::from_millis;
        let actions: Vec<Action> = intervals
            .iter()
            .map(|&(start, end, concurrent)| {
                let category = if concurrent {
                    "concurrent"
                } else {
                    "sequential"
                };
                Action::finished(category, "", ms(start), ms(end - start)).concurrent(concurrent)
            })
            .collect();
        assign(&actions)
    }

    #[test]
    fn concurrent_actions_reuse_the_first_free_lane() {
        // 0-10 sequential; 1-5, 2-6 and 3-4 side by side; 5-9 after 1-5.
        let lanes = lanes_of(&[
            (0, 10, false),
            (1, 5, true),
            (2, 6, true),
            (3, 4, true),
            (5, 9, true),
            (11, 12, false),
        ]);
        assert_eq!(lanes, [0, 1, 2, 3, 1, 0]);
    }
}
