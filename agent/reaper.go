package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// leaderLoop runs while this node is the Raft leader. It
//
//   - installs the cluster secret that signs grant tokens, once, when the
//     replicated state has none (a new cluster, or one created before
//     grants existed);
//   - proposes the removal of keys whose deletion date has passed and the
//     expiry of imported material whose ValidTo has passed;
//   - purges grant tombstones older than -grant-tombstone-retention.
//
// The FSM re-checks every condition against the proposal's time (and
// installs a secret only where there is none), so a proposal that races
// with a CancelKeyDeletion, or a duplicate from a previous leader, is
// refused harmlessly.
func (a *Agent) leaderLoop(ctx context.Context) {
	a.ensureClusterSecret(ctx)
	t := time.NewTicker(a.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.ensureClusterSecret(ctx)
			now := time.Now().UnixNano()
			a.reap(ctx, now)
			a.purgeGrantTombstones(ctx, now)
		}
	}
}

func (a *Agent) reap(ctx context.Context, now int64) {
	for _, ref := range a.state.DueForDeletion(now) {
		a.proposeHousekeeping(ctx, fsm.OpDeleteKey, now, ref)
	}
	for _, ref := range a.state.ExpiredMaterial(now) {
		a.proposeHousekeeping(ctx, fsm.OpExpireKeyMaterial, now, ref)
	}
}

func (a *Agent) proposeHousekeeping(ctx context.Context, op fsm.Op, now int64, ref fsm.KeyRef) {
	res, ok := a.propose(ctx, op, now, ref.Scope, fsm.KeyCmd{KeyID: ref.KeyID})
	if ok && res.Error == nil {
		a.log.Info("housekeeping applied", "op", op, "key_id", ref.KeyID, "account", ref.Account, "region", ref.Region)
	}
}

// ensureClusterSecret proposes a new random grant-token secret, sealed with
// the seal key, when the replicated state holds none. Only the sealed form
// enters the log; the plaintext is dropped at once.
func (a *Agent) ensureClusterSecret(ctx context.Context) {
	if a.state.HasClusterSecret() || a.sealer == nil {
		return
	}
	secret := engine.NewGrantTokenSecret()
	sealed, err := a.sealer.Seal(secret, []byte(fsm.ClusterSecretAAD))
	clear(secret)
	if err != nil {
		a.log.Error("seal the grant token secret", "err", err)
		return
	}
	res, ok := a.propose(ctx, fsm.OpInitClusterSecret, time.Now().UnixNano(), fsm.Scope{}, fsm.ClusterSecretCmd{Sealed: sealed})
	switch {
	case !ok:
	case res.Error == nil:
		a.log.Info("grant token secret installed")
	case res.Error.Message == fsm.ErrSecretExists().Message:
		// Another proposal won the race: fine.
	default:
		a.log.Warn("grant token secret not installed; retrying on the next tick", "err", res.Error.Error())
	}
}

// purgeGrantTombstones deletes the tombstones of grants retired or revoked
// more than the retention ago. The retention exceeds every node's grant
// propagation delay (checked at start), so no node still honours a grant
// whose tombstone goes.
func (a *Agent) purgeGrantTombstones(ctx context.Context, now int64) {
	oldest, ok := a.state.OldestTombstone()
	before := now - int64(a.cfg.GrantTombstoneRetention)
	if !ok || oldest >= before {
		return
	}
	res, ok := a.propose(ctx, fsm.OpPurgeGrantTombstones, now, fsm.Scope{}, fsm.PurgeCmd{Before: before})
	if ok && res.Error == nil {
		a.log.Info("grant tombstones purged", "retired_before", time.Unix(0, before).UTC().Format(time.RFC3339))
	}
}

// propose applies one housekeeping command and decodes its result; ok is
// false when it could not be committed (logged; retried on the next tick).
func (a *Agent) propose(ctx context.Context, op fsm.Op, now int64, scope fsm.Scope, payload any) (fsm.Result, bool) {
	cmd, err := fsm.Encode(op, now, scope, payload)
	if err != nil {
		a.log.Error("encode housekeeping command", "op", op, "err", err)
		return fsm.Result{}, false
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := a.node.Apply(actx, cmd)
	if err != nil {
		a.log.Warn("housekeeping proposal failed; retrying on the next tick", "op", op, "err", err)
		return fsm.Result{}, false
	}
	var res fsm.Result
	if err := json.Unmarshal(out, &res); err != nil {
		a.log.Warn("undecodable housekeeping result", "op", op, "err", err)
		return fsm.Result{}, false
	}
	return res, true
}
