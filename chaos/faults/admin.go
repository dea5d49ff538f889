package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keyraft/keyraft/internal/jsonhttp"
)

// AdminPath is where Handler serves (the path and everything below it).
const AdminPath = "/v1/faults"

const maxAdminBody = 64 << 10

// partitionRequest is the body of POST /v1/faults/partition.
type partitionRequest struct {
	Peers     []string `json:"peers"`
	Direction string   `json:"direction"`
	For       Duration `json:"for"`
}

// latencyRequest is the body of POST /v1/faults/latency.
type latencyRequest struct {
	Peers   []string `json:"peers"`
	Latency Duration `json:"latency"`
	Jitter  Duration `json:"jitter"`
	For     Duration `json:"for"`
}

// pauseRequest is the body of POST /v1/faults/pause-apply.
type pauseRequest struct {
	For Duration `json:"for"`
}

// ruleResponse answers a rule that was added.
type ruleResponse struct {
	Rule  Rule  `json:"rule"`
	State State `json:"state"`
}

// Handler serves the admin API (see the package documentation):
//
//	GET    /v1/faults               the State
//	POST   /v1/faults/partition     {"peers":["n2"],"direction":"both","for":"30s"}
//	POST   /v1/faults/latency       {"peers":["n2"],"latency":"200ms","jitter":"50ms","for":"1m"}
//	POST   /v1/faults/pause-apply   {"for":"5s"}
//	DELETE /v1/faults               clear every rule
//	DELETE /v1/faults/{id}          remove one rule
//
// Answers are JSON; errors are {"error": "..."} with 400 (bad input), 404
// (unknown path or rule) or 405 (wrong method). Mount it for both AdminPath
// and AdminPath+"/".
//
// On a nil Injector every request answers 404 with an error saying that
// fault injection is not enabled.
func (i *Injector) Handler() http.Handler {
	if i == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			jsonhttp.Error(w, http.StatusNotFound, "fault injection is not enabled on this node (start it with -enable-fault-injection)")
		})
	}
	return http.HandlerFunc(i.serveAdmin)
}

func (i *Injector) serveAdmin(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, AdminPath)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		jsonhttp.Error(w, http.StatusNotFound, "not found: "+r.URL.Path)
		return
	}
	rest = strings.Trim(rest, "/")
	switch {
	case rest == "":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			jsonhttp.Write(w, http.StatusOK, i.Snapshot())
		case http.MethodDelete:
			i.Clear()
			jsonhttp.Write(w, http.StatusOK, i.Snapshot())
		default:
			methodNotAllowed(w, "GET, DELETE")
		}
	case rest == "partition" || rest == "latency" || rest == "pause-apply":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		rule, err := i.addFromRequest(rest, r)
		if err != nil {
			jsonhttp.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		jsonhttp.Write(w, http.StatusOK, ruleResponse{Rule: rule, State: i.Snapshot()})
	case !strings.Contains(rest, "/"):
		if r.Method != http.MethodDelete {
			methodNotAllowed(w, "DELETE")
			return
		}
		if !i.Remove(rest) {
			jsonhttp.Error(w, http.StatusNotFound, fmt.Sprintf("no active rule %q", rest))
			return
		}
		jsonhttp.Write(w, http.StatusOK, i.Snapshot())
	default:
		jsonhttp.Error(w, http.StatusNotFound, "not found: "+r.URL.Path)
	}
}

func (i *Injector) addFromRequest(kind string, r *http.Request) (Rule, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return Rule{}, fmt.Errorf("read body: %w", err)
	}
	decode := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("invalid JSON body: %w", err)
		}
		if dec.More() {
			return errors.New("invalid JSON body: trailing data")
		}
		return nil
	}
	var rule Rule
	switch kind {
	case "partition":
		var req partitionRequest
		if err := decode(&req); err != nil {
			return Rule{}, err
		}
		dir, err := ParseDirection(req.Direction)
		if err != nil {
			return Rule{}, err
		}
		rule, err = i.Partition(req.Peers, dir, For(time.Duration(req.For)))
		if err != nil {
			return Rule{}, err
		}
	case "latency":
		var req latencyRequest
		if err := decode(&req); err != nil {
			return Rule{}, err
		}
		rule, err = i.Latency(req.Peers, time.Duration(req.Latency), time.Duration(req.Jitter), For(time.Duration(req.For)))
		if err != nil {
			return Rule{}, err
		}
	case "pause-apply":
		var req pauseRequest
		if err := decode(&req); err != nil {
			return Rule{}, err
		}
		if req.For <= 0 {
			return Rule{}, errors.New(`"for" is required: how long to pause applying, e.g. "5s"`)
		}
		rule, err = i.PauseApply(time.Duration(req.For))
		if err != nil {
			return Rule{}, err
		}
	}
	return rule, nil
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	jsonhttp.Error(w, http.StatusMethodNotAllowed, "method not allowed; use "+allow)
}
