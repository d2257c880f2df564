//! The ledger: one workspace's budget counters, and the reserve-then-
//! reconcile accounting against them.
//!
//! A *reservation* holds part of a counter's allowance for one request
//! while it is in flight; committing it replaces it with the request's
//! actual usage, dropping it uncommitted gives the allowance back. Every
//! change happens under one lock, so that reservations of concurrent
//! requests can never add up past a limit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use evershell_caps::{Budget, BudgetScope, Ceiling, Counter, Policy};

use super::{BudgetCounter, StoredCounter};

/// A workspace's counters.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    state: Mutex<State>,
}

/// What one request asks of one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    pub capability: String,
    pub counter: Counter,
    /// The estimate to hold; `0` still needs some allowance left.
    pub amount: u64,
}

/// Allowance held for one request. Dropping it uncommitted releases it.
#[derive(Debug)]
pub(crate) struct Reservation {
    ledger: Arc<Ledger>,
    /// The task epoch the request started in.
    epoch: u64,
    held: Vec<Want>,
    committed: bool,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub counter: Counter,
    /// Counter → remaining allowance of the request's capability.
    pub remaining: BTreeMap<String, i64>,
}

/// A reservation's output-token estimate lowered to what was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clamp {
    pub counter: Counter,
    pub to: u64,
}

/// What a commit left: the counters' remaining allowance, and the
/// `per: workspace` counters to persist with their new totals.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    pub remaining: BTreeMap<String, i64>,
    pub persist: Vec<(String, Counter, u64)>,
}

#[derive(Debug, Default)]
struct State {
    /// The task the `per: task` counters count for.
    task: Option<String>,
    /// Bumped whenever `task` changes.
    epoch: u64,
    slots: BTreeMap<(String, Counter), Slot>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    budget: Budget,
    used: u64,
    reserved: u64,
}

impl Ledger {
    /// Takes the budgets of `policy`: new counters start at zero, counters
    /// the policy still has keep their usage, the others are dropped.
    pub(crate) fn configure(&self, policy: &Policy) {
        let mut state = self.lock();
        let mut slots = BTreeMap::new();
        for cap in policy.capabilities() {
            for (&counter, &budget) in &cap.budgets {
                let key = (cap.name.clone(), counter);
                let kept = state.slots.get(&key);
                slots.insert(
                    key,
                    Slot {
                        budget,
                        used: kept.map_or(0, |s| s.used),
                        reserved: kept.map_or(0, |s| s.reserved),
                    },
                );
            }
        }
        state.slots = slots;
    }

    /// Sets the usage of the `per: workspace` counters named in `stored`
    /// (`(capability, counter, used)`, as a [`super::BudgetStore`] keeps
    /// them); unknown names are ignored.
    pub(crate) fn restore(&self, stored: &[StoredCounter]) {
        let mut state = self.lock();
        for (capability, counter, used) in stored {
            let Some(counter) = Counter::parse(counter) else {
                continue;
            };
            if let Some(slot) = state.slots.get_mut(&(capability.clone(), counter)) {
                if slot.budget.per == BudgetScope::Workspace {
                    slot.used = *used;
                }
            }
        }
    }

    /// Holds `wants` for one request started under `task`, all or none.
    /// With `clamp`, an output-token want whose budget has `ceiling: clamp`
    /// is lowered to what is left rather than refused (never to zero).
    pub(crate) fn reserve(
        self: &Arc<Self>,
        task: Option<&str>,
        wants: Vec<Want>,
        clamp: bool,
    ) -> Result<(Reservation, Option<Clamp>), Exceeded> {
        let mut state = self.lock();
        state.follow_task(task);

        let mut held = Vec::with_capacity(wants.len());
        let mut clamped = None;
        for mut want in wants {
            let key = (want.capability.clone(), want.counter);
            let Some(slot) = state.slots.get(&key) else {
                continue;
            };
            let left = slot.left();
            let lowerable = clamp
                && want.counter == Counter::OutputTokens
                && slot.budget.ceiling == Ceiling::Clamp;
            if left == 0 || (want.amount > left && !lowerable) {
                return Err(Exceeded {
                    counter: want.counter,
                    remaining: state.remaining(&want.capability),
                });
            }
            if want.amount > left {
                want.amount = left;
                clamped = Some(Clamp {
                    counter: want.counter,
                    to: left,
                });
            }
            held.push(want);
        }

        for want in &held {
            if let Some(slot) = state.slot_mut(want) {
                slot.reserved += want.amount;
            }
        }
        let reservation = Reservation {
            ledger: self.clone(),
            epoch: state.epoch,
            held,
            committed: false,
        };
        Ok((reservation, clamped))
    }

    /// Every counter, as the API shows it, after following `task`.
    pub(crate) fn snapshot(&self, task: Option<&str>) -> Vec<BudgetCounter> {
        let mut state = self.lock();
        state.follow_task(task);
        state
            .slots
            .iter()
            .map(|((capability, counter), slot)| BudgetCounter {
                capability: capability.clone(),
                counter: *counter,
                per: slot.budget.per,
                limit: slot.budget.limit,
                used: slot.used,
                reserved: slot.reserved,
                remaining: slot.left(),
            })
            .collect()
    }

    /// The usage of one counter, for persisting it.
    pub(crate) fn used(&self, capability: &str, counter: Counter) -> Option<u64> {
        let state = self.lock();
        let slot = state.slots.get(&(capability.to_owned(), counter))?;
        Some(slot.used)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a panic
        // elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reservation {
    /// The amount held on `counter`, `0` when it has no budget.
    pub(crate) fn held(&self, counter: Counter) -> u64 {
        self.held
            .iter()
            .filter(|w| w.counter == counter)
            .map(|w| w.amount)
            .sum()
    }

    /// The counters held, in the order reserved.
    pub(crate) fn counters(&self) -> Vec<Counter> {
        self.held.iter().map(|w| w.counter).collect()
    }

    /// Replaces the reservation by `actual(counter)`. The usage of a
    /// `per: task` counter is dropped when its task ended meanwhile: it
    /// belonged to the task that is gone.
    pub(crate) fn commit(mut self, actual: impl Fn(Counter) -> u64) -> Committed {
        self.committed = true;
        let mut state = self.ledger.lock();
        let mut committed = Committed::default();
        for want in &self.held {
            let same_task = state.epoch == self.epoch;
            // A policy without this budget was activated meanwhile.
            let Some(slot) = state.slot_mut(want) else {
                continue;
            };
            slot.reserved = slot.reserved.saturating_sub(want.amount);
            let scope = slot.budget.per;
            if scope == BudgetScope::Workspace || same_task {
                slot.used = slot.used.saturating_add(actual(want.counter));
            }
            if scope == BudgetScope::Workspace {
                let persist = (want.capability.clone(), want.counter, slot.used);
                committed.persist.push(persist);
            }
        }
        if let Some(first) = self.held.first() {
            committed.remaining = state.remaining(&first.capability);
        }
        committed
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let mut state = self.ledger.lock();
        for want in &self.held {
            if let Some(slot) = state.slot_mut(want) {
                slot.reserved = slot.reserved.saturating_sub(want.amount);
            }
        }
    }
}

impl State {
    /// Starts a new epoch, with the `per: task` counters at zero, when the
    /// current task is not the one they count for.
    fn follow_task(&mut self, task: Option<&str>) {
        if self.task.as_deref() == task {
            return;
        }
        self.task = task.map(str::to_owned);
        self.epoch += 1;
        for slot in self.slots.values_mut() {
            if slot.budget.per == BudgetScope::Task {
                slot.used = 0;
            }
        }
    }

    /// Counter → allowance left of `capability`'s budgets for new
    /// requests: the limit less usage and the reservations in flight.
    fn remaining(&self, capability: &str) -> BTreeMap<String, i64> {
        self.slots
            .iter()
            .filter(|((cap, _), _)| cap == capability)
            .map(|((_, counter), slot)| {
                let left = i64::try_from(slot.left()).unwrap_or(i64::MAX);
                (counter.as_str().to_owned(), left)
            })
            .collect()
    }

    /// The slot of `want`, gone when a policy without its budget was
    /// activated since it was reserved.
    fn slot_mut(&mut self, want: &Want) -> Option<&mut Slot> {
        self.slots.get_mut(&(want.capability.clone(), want.counter))
    }
}

impl Slot {
    /// What a new reservation may still take.
    fn left(&self) -> u64 {
        self.budget
            .limit
            .saturating_sub(self.used.saturating_add(self.reserved))
    }
}

#[cfg(test)]
mod tests;
