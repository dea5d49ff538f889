package faults

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// WrapFSM returns fsm with apply lag: its Apply blocks while a PauseApply
// window of inj is in force (waiting on a timer and the rule-change signal,
// never spinning), so entries keep being replicated and committed but this
// node's FSM falls behind, then catches up when the window ends. Snapshot and
// Restore are delegated unchanged. If fsm reports its applied index
// (AppliedIndex() uint64), so does the wrapper.
//
// The wrapper also has two methods the cluster layer uses:
// BlockedApplyIndex (the index of the entry being held back, 0 if none: the
// node's applied index is below it) and ReleaseApply (stop honouring pauses
// for good; called on shutdown so that raft can stop).
//
// With a nil inj, fsm is returned as is. Optional interfaces of fsm other
// than AppliedIndex (raft.BatchingFSM, raft.ConfigurationStore) are hidden:
// raft then applies entries one by one.
func WrapFSM(fsm raft.FSM, inj *Injector) raft.FSM {
	if inj == nil {
		return fsm
	}
	p := &pausableFSM{inner: fsm, inj: inj, release: make(chan struct{})}
	if ix, ok := fsm.(interface{ AppliedIndex() uint64 }); ok {
		return &pausableIndexedFSM{pausableFSM: p, ix: ix}
	}
	return p
}

type pausableFSM struct {
	inner   raft.FSM
	inj     *Injector
	blocked atomic.Uint64
	release chan struct{}
	once    sync.Once
}

func (f *pausableFSM) Apply(l *raft.Log) any {
	if f.inj.ApplyPaused() {
		f.blocked.Store(l.Index)
		f.inj.waitApplyPause(f.release)
		f.blocked.Store(0)
	}
	return f.inner.Apply(l)
}

func (f *pausableFSM) Snapshot() (raft.FSMSnapshot, error) { return f.inner.Snapshot() }
func (f *pausableFSM) Restore(rc io.ReadCloser) error      { return f.inner.Restore(rc) }

// BlockedApplyIndex returns the index of the log entry whose Apply is held
// back by a pause, or 0.
func (f *pausableFSM) BlockedApplyIndex() uint64 { return f.blocked.Load() }

// ReleaseApply ends any pause for this FSM now and for good.
func (f *pausableFSM) ReleaseApply() { f.once.Do(func() { close(f.release) }) }

type pausableIndexedFSM struct {
	*pausableFSM
	ix interface{ AppliedIndex() uint64 }
}

func (f *pausableIndexedFSM) AppliedIndex() uint64 { return f.ix.AppliedIndex() }
