// Command helm-values runs install/upgrade steps through Helm 3's own action code
// (in-memory release storage, no cluster) and prints, after each step, the values
// the chart was rendered with: which upgrade flags carry which switch value.
// `lookup` finds nothing here; what the chart does with a live object is
// covered by the helm-unittest suites in chart/tests.
//
// stdin: [{"op": "install"|"upgrade", "flags": ["reuse-values", ...], "files": [...], "set": [...]}]
// stdout: one JSON object per step: {"values": {...}} or {"error": "..."}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

type step struct {
	Op    string   `json:"op"`
	Flags []string `json:"flags"`
	Files []string `json:"files"`
	Set   []string `json:"set"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: helm-values CHART < steps.json")
		os.Exit(2)
	}
	chart, err := loader.Load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var steps []step
	if err := json.NewDecoder(os.Stdin).Decode(&steps); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A cluster new enough for the chart's kubeVersion.
	capabilities := *chartutil.DefaultCapabilities
	capabilities.KubeVersion = chartutil.KubeVersion{Version: "v1.35.0", Major: "1", Minor: "35"}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: &capabilities,
		Log:          func(string, ...interface{}) {},
	}
	out := json.NewEncoder(os.Stdout)
	for _, s := range steps {
		rel, err := run(cfg, chart, s)
		if err != nil {
			_ = out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		rendered, err := chartutil.CoalesceValues(rel.Chart, rel.Config)
		if err != nil {
			_ = out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		_ = out.Encode(map[string]any{"values": rendered})
	}
}

func run(cfg *action.Configuration, chart *chart.Chart, s step) (*release.Release, error) {
	options := values.Options{ValueFiles: s.Files, Values: s.Set}
	vals, err := options.MergeValues(getter.Providers{})
	if err != nil {
		return nil, err
	}
	if s.Op == "install" {
		install := action.NewInstall(cfg)
		install.ReleaseName, install.Namespace = "leviathan", "leviathan"
		return install.Run(chart, vals)
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = "leviathan"
	for _, flag := range s.Flags {
		switch flag {
		case "reuse-values":
			upgrade.ReuseValues = true
		case "reset-values":
			upgrade.ResetValues = true
		case "reset-then-reuse-values":
			upgrade.ResetThenReuseValues = true
		default:
			return nil, fmt.Errorf("unknown flag %q", flag)
		}
	}
	return upgrade.Run("leviathan", chart, vals)
}
