package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

// loadFlags fills fs from, in rising precedence: the defaults, an optional
// JSON config file (-config FILE; keys are flag names), the environment
// (KEYRAFT_<FLAG>, upper case, dashes as underscores) and the command line.
func loadFlags(fs *flag.FlagSet, args []string) error {
	if path := findConfigArg(args); path != "" {
		if err := applyConfigFile(fs, path); err != nil {
			return err
		}
	} else if path := os.Getenv("KEYRAFT_CONFIG"); path != "" {
		if err := applyConfigFile(fs, path); err != nil {
			return err
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil || f.Name == "config" {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	// A list given on the command line replaces, not extends, one from the
	// environment or the config file.
	fs.VisitAll(func(f *flag.Flag) {
		if l, ok := f.Value.(*listFlag); ok {
			l.replaceNext = true
		}
	})
	return fs.Parse(args)
}

func envName(flagName string) string {
	return "KEYRAFT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// findConfigArg looks for -config/--config before the real parse, because
// the file's values must be applied before the command line overrides them.
func findConfigArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, p+"=") {
				return strings.TrimPrefix(a, p+"=")
			}
		}
	}
	return ""
}

func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config file %s: not a JSON object: %w", path, err)
	}
	for name, v := range values {
		if name == "config" {
			continue
		}
		if fs.Lookup(name) == nil {
			return fmt.Errorf("config file %s: unknown setting %q", path, name)
		}
		var s string
		switch t := v.(type) {
		case string:
			s = t
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		default:
			s = fmt.Sprint(t)
		}
		if err := fs.Set(name, s); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, name, err)
		}
	}
	return nil
}

// listFlag is a comma-separated list that may also be given repeatedly.
type listFlag struct {
	values      []string
	replaceNext bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.values, ",")
}

func (l *listFlag) Set(v string) error {
	if l.replaceNext {
		l.values, l.replaceNext = nil, false
	}
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l.values = append(l.values, p)
		}
	}
	return nil
}
