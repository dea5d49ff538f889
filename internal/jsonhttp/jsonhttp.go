// Package jsonhttp writes the small JSON answers of keyraft's own HTTP
// endpoints (/v1/status, the internal cluster endpoints, /v1/faults): an
// indented document, or {"error": "..."}. The AWS API has its own encoder
// (api/jsonw.go); this is for everything else.
package jsonhttp

import (
	"encoding/json"
	"net/http"
)

// Write answers code with v as indented JSON.
func Write(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// Error answers code with {"error": msg}.
func Error(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
