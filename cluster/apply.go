package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// IndexHeader carries, on a forwarded write's answer, the Raft index at
// which the leader applied it.
const IndexHeader = "X-Keyraft-Index"

const (
	maxCommandSize  = 4 << 20  // body limit of /v1/internal/apply
	maxResponseSize = 16 << 20 // bound on a forwarded response we read
	retryMinBackoff = 10 * time.Millisecond
	retryMaxBackoff = 250 * time.Millisecond
)

// Apply replicates cmd (opaque bytes) through raft and returns the JSON
// encoding of what the FSM's Apply returned for it.
//
// On the leader: raft.Apply, wait for commit and apply, json.Marshal the FSM
// response (an FSM response that is an error value is returned as an error).
// On a follower: POST the bytes to the leader's /v1/internal/apply and return
// its body.
//
// While no leader is known, the leader cannot be dialled, or it answers "not
// leader", Apply retries with a short backoff; when ctx ends or
// Config.ApplyTimeout passes it returns an error wrapping ErrNoLeader (and
// ctx.Err() if the caller's context ended): the command was not applied.
// ErrUnknownOutcome means it may have been. Errors never contain the command
// bytes.
func (n *Node) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if n.isClosing() {
		return nil, ErrShutdown
	}
	if err := ctx.Err(); err != nil {
		return nil, err // nothing attempted
	}
	actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	backoff := retryMinBackoff
	var lastErr error
	for {
		out, retry, err := n.applyOnce(actx, cmd)
		if !retry {
			if errors.Is(err, ErrUnknownOutcome) {
				n.stats.applyUnknown.Add(1)
			}
			return out, err
		}
		lastErr = err
		n.stats.applyRetries.Add(1)
		select {
		case <-actx.Done():
			n.stats.applyNoLeader.Add(1)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %w (last: %v)", ErrNoLeader, ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("%w within %s (last: %v)", ErrNoLeader, n.cfg.ApplyTimeout, lastErr)
		case <-n.shutdownCh:
			return nil, ErrShutdown
		case <-time.After(backoff):
			backoff = min(backoff*2, retryMaxBackoff)
		}
	}
}

// applyOnce makes one attempt. retry reports that the command certainly was
// not applied and another attempt may succeed.
func (n *Node) applyOnce(ctx context.Context, cmd []byte) (out []byte, retry bool, err error) {
	if n.isClosing() {
		return nil, false, ErrShutdown
	}
	if n.raft.State() == raft.Leader {
		out, _, retry, err := n.applyLocal(ctx, cmd)
		return out, retry, err
	}
	_, leader := n.raft.LeaderWithID()
	switch {
	case leader == "":
		return nil, true, errors.New("no leader known")
	case string(leader) == n.cfg.NodeID:
		return nil, true, errors.New("leadership changing")
	}
	m, _ := n.members.get(string(leader))
	if m.APIAddr == "" {
		return nil, true, fmt.Errorf("no API address known for leader %s", leader)
	}
	out, index, retry, err := n.forward(ctx, string(leader), m.APIAddr, cmd)
	if err == nil {
		// Read-your-writes on this node: the leader applied the entry; wait
		// (bounded) until our own FSM has too, so that a client that wrote
		// through us and reads from us next sees its write.
		n.waitApplied(ctx, index)
	}
	return out, retry, err
}

// maxLocalApplyWait bounds how long a forwarded write waits for this
// node's own copy to apply it. A follower that is far behind (restarted,
// or starved by Raft's replication backoff) would otherwise hold every write
// through it until the client gives up.
const maxLocalApplyWait = time.Second

// waitApplied waits (bounded) until this node's FSM has applied index.
// Timing out is not an error: the write is committed, only our copy lags;
// Config.OnBehind is told, so that reads here wait for the node to catch up
// instead of missing the write (read-your-writes on the node written
// through).
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	if index == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, maxLocalApplyWait)
	defer cancel()
	for delay := 500 * time.Microsecond; n.fsmApplied() < index; delay = min(delay*2, 20*time.Millisecond) {
		select {
		case <-wctx.Done():
			n.stats.applyLocalLag.Add(1)
			if n.cfg.OnBehind != nil {
				n.cfg.OnBehind(index)
			}
			return
		case <-n.shutdownCh:
			return
		case <-time.After(delay):
		}
	}
}

// applyLocal applies cmd through our raft, which must be the leader; it never
// forwards. retry is true only when raft refused the command before
// appending it.
func (n *Node) applyLocal(ctx context.Context, cmd []byte) (out []byte, index uint64, retry bool, err error) {
	if n.isClosing() {
		return nil, 0, true, ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return nil, 0, true, ErrNotLeader
	}
	f := n.raft.Apply(cmd, n.timeoutFor(ctx))
	if err := waitFuture(ctx, f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, 0, true, errors.Join(ErrNotLeader, err)
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, 0, true, err
		case errors.Is(err, raft.ErrLeadershipLost):
			return nil, 0, false, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, 0, false, fmt.Errorf("%w: %w", ErrUnknownOutcome, ErrShutdown)
		case ctx.Err() != nil:
			return nil, 0, false, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		default:
			return nil, 0, false, fmt.Errorf("%w: raft apply: %w", ErrUnknownOutcome, err)
		}
	}
	n.stats.appliedLocal.Add(1)
	resp := f.Response()
	if e, ok := resp.(error); ok && e != nil {
		return nil, 0, false, e
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("cluster: encode FSM response: %w", err)
	}
	return b, f.Index(), false, nil
}

// forward POSTs cmd to the leader's internal apply endpoint.
func (n *Node) forward(ctx context.Context, leader, apiAddr string, cmd []byte) (out []byte, index uint64, retry bool, err error) {
	req, err := n.internalRequest(ctx, http.MethodPost, "http://"+apiAddr+"/v1/internal/apply", cmd)
	if err != nil {
		return nil, 0, false, fmt.Errorf("cluster: forward to %s: %w", leader, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	n.stats.applyForwarded.Add(1)
	resp, err := n.client.Do(req)
	if err != nil {
		if isDialError(err) {
			return nil, 0, true, fmt.Errorf("leader %s unreachable: %w", leader, err)
		}
		return nil, 0, false, fmt.Errorf("%w: forward to leader %s: %w", ErrUnknownOutcome, leader, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		return nil, 0, false, fmt.Errorf("%w: read leader %s response: %w", ErrUnknownOutcome, leader, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		index, _ := strconv.ParseUint(resp.Header.Get(IndexHeader), 10, 64)
		return body, index, false, nil
	case http.StatusServiceUnavailable: // not leader / shutting down: not applied
		return nil, 0, true, fmt.Errorf("leader %s: %s", leader, errorText(body))
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, 0, false, fmt.Errorf("cluster: leader %s refused our request signature (ClusterAuthKey mismatch, or clocks apart?)", leader)
	case http.StatusRequestEntityTooLarge:
		return nil, 0, false, fmt.Errorf("cluster: command larger than %d bytes", maxCommandSize)
	default:
		return nil, 0, false, fmt.Errorf("cluster: leader %s: HTTP %d: %s", leader, resp.StatusCode, errorText(body))
	}
}

// isDialError reports that a request failed while connecting, so nothing
// was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// errorText extracts {"error": "..."} from a JSON body, or returns a
// truncated body.
func errorText(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(bytes.TrimSpace(body))
}
