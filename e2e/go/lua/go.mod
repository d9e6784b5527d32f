// Wrapper module: an Argo CD-style Lua health-check runner on gopher-lua for the e2e trials
// (built by e2e/build-lua into its own cache directory). Versions as in Argo CD v3.6's go.mod.
module bascule.dev/e2e/lua

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.2
	layeh.com/gopher-json v0.0.0-20190114024228-97fed8db8427
)
