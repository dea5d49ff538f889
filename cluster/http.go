package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/internal/jsonhttp"
)

// Handler serves the cluster endpoints; mount it on the node's HTTP server
// (the one at APIAdvertiseAddr):
//
//	GET  /v1/status            JSON Status (indented), no auth
//	GET  /v1/internal/peers    bootstrap check (auth)
//	GET  /v1/internal/commit-index  the leader's commit index and FSM-applied index (auth; 503 elsewhere)
//	POST /v1/internal/apply    forwarded write, body = command (auth, ≤ 4 MiB)
//	POST /v1/internal/remove?id=X  leader removes server X (auth)
//
// Internal endpoints require a request signed by a node of the cluster
// (AuthHeader, internalauth.go): missing → 401, wrong, stale or replayed
// → 403. Errors are JSON {"error": "..."}; 503 means
// "not applied, try the leader again". With Config.Faults, requests to the
// internal endpoints from a peer (faults.FromHeader) this node has an
// inbound cut from are dropped, and latency rules delay the answers.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		jsonhttp.Write(w, http.StatusOK, n.Status())
	})
	internal := func(pattern string, h internalHandler) {
		mux.Handle(pattern, n.cfg.Faults.GuardHTTP(n.auth(h)))
	}
	internal("GET /v1/internal/peers", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		jsonhttp.Write(w, http.StatusOK, n.peers())
	})
	internal("GET /v1/internal/commit-index", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if n.raft.State() != raft.Leader {
			jsonhttp.Error(w, http.StatusServiceUnavailable, ErrNotLeader.Error())
			return
		}
		jsonhttp.Write(w, http.StatusOK, commitIndexResponse{CommitIndex: n.raft.CommitIndex(), FSMApplied: n.fsmApplied()})
	})
	internal("POST /v1/internal/apply", n.handleApply)
	internal("POST /v1/internal/remove", n.handleRemove)
	return mux
}

// internalHandler serves an internal endpoint; auth has read and verified
// the body.
type internalHandler func(w http.ResponseWriter, r *http.Request, body []byte)

// auth reads the body (the signature covers it), verifies the request's
// signature and hands the body on.
func (n *Node) auth(h internalHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCommandSize))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				jsonhttp.Error(w, http.StatusRequestEntityTooLarge, "command too large")
				return
			}
			jsonhttp.Error(w, http.StatusBadRequest, "read body: "+err.Error())
			return
		}
		if code, msg := n.signer.verify(r, body, time.Now()); code != 0 {
			jsonhttp.Error(w, code, msg)
			return
		}
		h(w, r, body)
	}
}

func (n *Node) handleApply(w http.ResponseWriter, r *http.Request, cmd []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.ApplyTimeout)
	defer cancel()
	// Never forward again: a forwarded write is applied here or refused.
	out, index, retry, err := n.applyLocal(ctx, cmd)
	switch {
	case err == nil:
		n.stats.forwardedServed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(IndexHeader, strconv.FormatUint(index, 10))
		w.WriteHeader(http.StatusOK)
		w.Write(out)
	case retry:
		jsonhttp.Error(w, http.StatusServiceUnavailable, err.Error())
	default:
		jsonhttp.Error(w, http.StatusInternalServerError, err.Error())
	}
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.URL.Query().Get("id")
	if id == "" {
		jsonhttp.Error(w, http.StatusBadRequest, "missing id")
		return
	}
	if n.isClosing() {
		jsonhttp.Error(w, http.StatusServiceUnavailable, ErrShutdown.Error())
		return
	}
	if n.raft.State() != raft.Leader {
		jsonhttp.Error(w, http.StatusServiceUnavailable, ErrNotLeader.Error())
		return
	}
	// Mark it left first so that reconcile does not add it back while its
	// gossip leave is still propagating.
	n.members.markLeaving(id)
	err := waitFuture(r.Context(), n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout))
	if err != nil {
		err = mapRaftErr(err)
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrShutdown) {
			code = http.StatusServiceUnavailable
		}
		jsonhttp.Error(w, code, err.Error())
		return
	}
	n.stats.reconcileRemovals.Add(1)
	n.log.Info("removed server on request", "server", id)
	jsonhttp.Write(w, http.StatusOK, map[string]string{"removed": id})
}

// requestRemove asks the leader at apiAddr to remove server id.
func (n *Node) requestRemove(apiAddr, id string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	u := "http://" + apiAddr + "/v1/internal/remove?id=" + url.QueryEscape(id)
	req, err := n.internalRequest(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("remove %s: HTTP %d: %s", id, resp.StatusCode, errorText(body))
	}
	return nil
}
