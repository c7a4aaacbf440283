//! A bounded memory of recently closed or reset stream IDs.

use std::collections::{HashMap, VecDeque};

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Both sides sent FIN.
    Closed,
    /// Either side sent RST (or the SYN was refused).
    Reset,
}

/// FIFO-evicting map of stream ID to how it ended; never holds more than `cap` entries.
#[derive(Debug)]
pub struct RecentlyClosed {
    cap: usize,
    map: HashMap<u32, Ended>,
    order: VecDeque<u32>,
}

impl RecentlyClosed {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, id: u32, how: Ended) {
        if self.map.insert(id, how).is_none() {
            self.order.push_back(id);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<Ended> {
        self.map.get(&id).copied()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_fifo() {
        let mut r = RecentlyClosed::new(3);
        for id in 1..=5 {
            r.insert(id, Ended::Closed);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.get(1), None);
        assert_eq!(r.get(5), Some(Ended::Closed));
        r.insert(5, Ended::Reset);
        assert_eq!(r.get(5), Some(Ended::Reset));
        assert_eq!(r.len(), 3);
    }
}
