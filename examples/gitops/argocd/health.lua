-- Argo CD health check for bascule.dev/MultiCloudWorkload (Lua 5.1, gopher-lua).
--
-- Install it in argocd-cm as resource.customizations.health.bascule.dev_MultiCloudWorkload
-- (docs/gitops.md; argocd-cm.yaml beside this file). It reads only what the operator writes,
-- following kstatus:
--
--   Progressing  no status yet, or status.observedGeneration (or the Ready condition's
--                observedGeneration) behind metadata.generation: Bascule has not acted on the
--                last change yet
--   Degraded     Degraded=True for a reason a person must fix (OwnershipConflict, InvalidTemplate,
--                RenderFailed, MoveBudgetExhausted, InvalidSpec, Forbidden, RefusedByPolicy, MovesPaused), or Ready=False because nothing can be placed
--                (Unschedulable, FailStatic)
--   Progressing  Progressing=True (replicas being placed, surged or drained), or no verdict yet
--   Healthy      Ready=True
--
-- The message is the Ready condition's ("10/10 replicas available on eks-use1=8,gke-euw1=2"),
-- followed by the Degraded condition's reason and message when that is the verdict.
--
-- Argo CD runs configured checks with the base and table libraries only (no string library), so
-- this script uses nothing else. Tested with gopher-lua by the e2e trial gitops::argocd_health_*.

local DEGRADED_REASONS = {
  OwnershipConflict = true,
  InvalidTemplate = true,
  RenderFailed = true,
  MoveBudgetExhausted = true,
  InvalidSpec = true,
  Forbidden = true,
  RefusedByPolicy = true,
  MovesPaused = true,
}
local UNPLACEABLE_REASONS = {
  Unschedulable = true,
  FailStatic = true,
}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function behind(observed, generation)
  return generation ~= nil and (observed == nil or observed < generation)
end

local hs = {}
local status = obj.status
local generation = obj.metadata and obj.metadata.generation

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Bascule to place the workload"
  return hs
end

local ready = condition(status, "Ready")
if behind(status.observedGeneration, generation)
    or (ready ~= nil and ready.observedGeneration ~= nil and behind(ready.observedGeneration, generation)) then
  hs.status = "Progressing"
  hs.message = "Waiting for Bascule to act on generation " .. tostring(generation)
  return hs
end

local message = ""
if ready ~= nil and ready.message ~= nil then
  message = ready.message
end

local degraded = condition(status, "Degraded")
if degraded ~= nil and degraded.status == "True" and DEGRADED_REASONS[degraded.reason] then
  hs.status = "Degraded"
  local detail = degraded.reason
  if degraded.message ~= nil and degraded.message ~= "" then
    detail = detail .. ": " .. degraded.message
  end
  if message ~= "" then
    hs.message = message .. "; " .. detail
  else
    hs.message = detail
  end
  return hs
end

if ready ~= nil and ready.status == "False" and UNPLACEABLE_REASONS[ready.reason] then
  hs.status = "Degraded"
  hs.message = message
  return hs
end

local progressing = condition(status, "Progressing")
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = message
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
  return hs
end

hs.status = "Progressing"
if message ~= "" then
  hs.message = message
else
  hs.message = "Waiting for the Ready condition"
end
return hs
