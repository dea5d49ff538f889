package faults

import (
	"encoding/json"
	"net/http"
	"time"
)

// FromHeader carries the sending node's ID on cluster-internal HTTP
// requests (forwarded writes, bootstrap and membership calls), so that the
// receiving node can apply its inbound rules. Only internal endpoints look
// at it; API requests from clients are never affected by faults.
const FromHeader = "X-Keyraft-From"

// GuardHTTP wraps the handler of cluster-internal endpoints. A request whose
// FromHeader names a peer this node has an inbound cut from is dropped: the
// connection is closed without an answer (the sender cannot tell whether it
// arrived, as with a lost packet). A latency rule for that peer holds the
// answer back by the rule's delay. With a nil Injector it returns h.
func (i *Injector) GuardHTTP(h http.Handler) http.Handler {
	if i == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i.active.Load() == nil {
			h.ServeHTTP(w, r)
			return
		}
		eff := i.effectFor(r.Header.Get(FromHeader))
		if eff.cutIn {
			i.stats.httpDropped.Add(1)
			dropRequest(w)
			return
		}
		h.ServeHTTP(w, r)
		if d := eff.delay(); d > 0 {
			i.stats.httpDelayed.Add(1)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
	})
}

// dropRequest closes the request's connection without an answer; where the
// connection cannot be taken over (HTTP/2) it answers 503.
func dropRequest(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.Close()
		return
	}
	b, _ := json.Marshal(map[string]string{"error": "dropped by fault injection"})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write(append(b, '\n'))
}
