// Command argo-lua-health runs an Argo CD resource health check written in Lua the way Argo CD
// runs a health check configured in argocd-cm (resource.customizations.health.GROUP_KIND), so
// that the check shipped in examples/gitops/argocd/health.lua is tested under the interpreter and
// calling convention it will meet:
//
//   - gopher-lua (Lua 5.1 semantics), the version Argo CD pins;
//   - only the libraries Argo CD opens for configured scripts (useOpenLibs: false): package, base
//     and table. No string, math or io library, and no os (Argo CD adds a reduced os library;
//     it is left out here so that a script relying on it fails the test);
//   - the resource as the global `obj` (JSON objects and arrays as Lua tables, numbers as Lua
//     numbers, null as nil), a 1 s deadline, and the script's return value (a table) encoded with
//     layeh.com/gopher-json into {status, message}; a status outside Argo CD's set becomes
//     Unknown with Argo CD's message.
//
// Usage: argo-lua-health SCRIPT < objects.json
//
// stdin holds a JSON array of Kubernetes objects; stdout gets a JSON array with, for each, either
// {"status": ..., "message": ...} or {"error": ...}. Built by e2e/build-lua.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argo-lua-health SCRIPT < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var objects []map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "stdin: a JSON array of objects:", err)
		os.Exit(1)
	}
	results := make([]result, 0, len(objects))
	for _, obj := range objects {
		status, message, err := health(string(script), obj)
		if err != nil {
			results = append(results, result{Error: err.Error()})
		} else {
			results = append(results, result{Status: status, Message: message})
		}
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// health runs the script on one object in a fresh interpreter, as Argo CD does.
func health(script string, obj map[string]any) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true},
			lua.LString(lib.name)); err != nil {
			return "", "", fmt.Errorf("opening %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	encoded, err := luajson.Encode(ret)
	if err != nil {
		return "", "", err
	}
	var hs struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(encoded, &hs); err != nil {
		return "", "", fmt.Errorf("the returned table %s: %w", encoded, err)
	}
	switch hs.Status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return hs.Status, hs.Message, nil
	}
	return "Unknown", "Lua returned an invalid health status", nil
}

// toLua converts decoded JSON into Lua values: objects and arrays become tables (arrays
// 1-based), numbers Lua numbers, null nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
