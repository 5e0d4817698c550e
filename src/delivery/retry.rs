//! The retry policy, pure: given how many attempts a delivery has had and how the last one
//! failed, when (if ever) to try again. The schedule comes from config; each wait gets
//! ± jitter so that many deliveries failing together do not retry together; a platform's
//! `Retry-After` is honoured but clamped to [step, 2 × step] so a bad header can neither
//! hammer the platform nor park a delivery for days.

use std::time::Duration;

use crate::config::RetrySettings;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    jitter: f64,
    max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    pub fn new(settings: &RetrySettings) -> Self {
        RetryPolicy {
            schedule: settings.schedule.clone(),
            jitter: settings.jitter,
            max_attempts: settings.max_attempts,
        }
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// `attempts` = attempts made in this budget (since creation or the last operator
    /// retry), including the one that just failed. `random` is in [0, 1): pass
    /// `rand::random()` in production, a fixed value in tests.
    pub fn after_transient_failure(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        random: f64,
    ) -> Decision {
        if attempts >= self.max_attempts || self.schedule.is_empty() {
            return Decision::GiveUp;
        }
        let idx = (attempts.max(1) as usize - 1).min(self.schedule.len() - 1);
        let step = self.schedule[idx];
        if let Some(asked) = retry_after {
            return Decision::RetryAfter(asked.clamp(step, step * 2));
        }
        // random in [0,1) -> factor in [1 - jitter, 1 + jitter)
        let factor = 1.0 + self.jitter * (2.0 * random - 1.0);
        Decision::RetryAfter(step.mul_f64(factor.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&RetrySettings {
            schedule: vec![Duration::from_secs(10), Duration::from_secs(60)],
            jitter: 0.2,
            max_attempts: 4,
        })
    }

    #[test]
    fn waits_follow_the_schedule_and_the_last_step_repeats() {
        let p = policy();
        let mid = 0.5; // no jitter
        assert_eq!(
            p.after_transient_failure(1, None, mid),
            Decision::RetryAfter(Duration::from_secs(10))
        );
        assert_eq!(
            p.after_transient_failure(2, None, mid),
            Decision::RetryAfter(Duration::from_secs(60))
        );
        assert_eq!(
            p.after_transient_failure(3, None, mid),
            Decision::RetryAfter(Duration::from_secs(60))
        );
    }

    #[test]
    fn gives_up_when_attempts_run_out() {
        assert_eq!(
            policy().after_transient_failure(4, None, 0.5),
            Decision::GiveUp
        );
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = policy();
        let low = p.after_transient_failure(1, None, 0.0);
        let high = p.after_transient_failure(1, None, 0.999_999);
        assert_eq!(low, Decision::RetryAfter(Duration::from_secs(8)));
        match high {
            Decision::RetryAfter(d) => {
                assert!(d > Duration::from_millis(11_990) && d < Duration::from_secs(12))
            }
            Decision::GiveUp => panic!("should retry"),
        }
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = policy();
        let ask = |s| p.after_transient_failure(1, Some(Duration::from_secs(s)), 0.5);
        assert_eq!(ask(15), Decision::RetryAfter(Duration::from_secs(15)));
        assert_eq!(ask(1), Decision::RetryAfter(Duration::from_secs(10)));
        assert_eq!(ask(3600), Decision::RetryAfter(Duration::from_secs(20)));
    }
}
