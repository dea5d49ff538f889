// Package chaos judges what a keyraft cluster did under faults, in the
// shape of etcd's tests/robustness: clients record every call they make
// (history.go), and after the faults heal the checkers decide whether the
// history is acceptable:
//
//   - key-state changes are linearizable (porcupine, one partition per key;
//     a write that failed without a definite answer may have happened at
//     any later time, or never) (model.go);
//   - the final state every node reports is one that linearization allows,
//     so no acknowledged write was lost;
//   - every MAC any node produced verifies everywhere, identical inputs gave
//     identical MACs, and no wrong MAC was ever accepted (checks.go);
//   - no node produced a MAC with a key later than the staleness bound after
//     that key was disabled or scheduled for deletion at the leader.
//
// The fault injection itself lives in chaos/faults.
package chaos
