import torch
torch.manual_seed(0)
def e4m3(x): return x.to(torch.float8_e4m3fn).to(torch.float32)
def f16(x): return x.to(torch.float16).to(torch.float32)
def run(scale_log2_std, n, slack, S, trials=20, sink=0.0):
    errs=[]
    for t in range(trials):
        x = torch.randn(n) * scale_log2_std
        if sink: x[0] += sink
        v = e4m3(torch.randn(n, 64))
        # exact
        p = torch.exp2(x - x.max()); ref = (p[:,None]*v).sum(0)/p.sum()
        # lazy base: emulate blocks of 64, running max moves only by > slack
        base = -float('inf'); O = torch.zeros(64); L = 0.0
        for b0 in range(0, n, 64):
            xb = x[b0:b0+64]; m = xb.max().item()
            if m > base + slack:
                nb = m; r = 2.0**(base - nb) if base != -float('inf') else 0.0
                O *= r; L *= r; base = nb
            pb = torch.exp2(xb - base)
            hp = f16(pb*S); hi = e4m3(hp); lo = e4m3(f16(hp - hi))
            O += ((hi+lo)[:,None]*v[b0:b0+64]).sum(0)/S; L += pb.sum().item()
        out = O/L
        errs.append(((out-ref).norm()/ref.norm()).item())
    return sum(errs)/len(errs), max(errs)
for std in (1.44, 3.0):
  for sink in (0.0, 12.0):
    for n in (4096,):
        for slack,S in ((0.0,256.),(0.807,256.),(4.0,16.),(3.0,32.),(8.0,1.)):
            m,mx = run(std,n,slack,S,sink=sink)
            print(f"std {std} sink {sink} n {n} slack {slack} scale {S}: mean {m:.2e} max {mx:.2e}")
