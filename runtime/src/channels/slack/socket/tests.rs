use super::RecentEnvelopes;

#[test]
fn a_redelivered_envelope_is_recognised_and_the_memory_stays_bounded() {
    let mut recent = RecentEnvelopes::new(3);
    assert!(recent.first_time("a"));
    assert!(!recent.first_time("a"), "the same id again is a redelivery");
    assert!(recent.first_time("b"));
    assert!(recent.first_time("c"));
    // A fourth id pushes out the oldest one.
    assert!(recent.first_time("d"));
    assert_eq!(recent.order.len(), 3);
    assert_eq!(recent.seen.len(), 3);
    assert!(!recent.first_time("d"));
    assert!(!recent.first_time("b"));
    assert!(recent.first_time("a"), "forgotten after capacity newer ids");
}

#[test]
fn a_zero_capacity_still_remembers_the_last_envelope() {
    let mut recent = RecentEnvelopes::new(0);
    assert!(recent.first_time("a"));
    assert!(!recent.first_time("a"));
    assert!(recent.first_time("b"));
    assert!(recent.first_time("a"));
}
