import torch
torch.manual_seed(0)
def skip_rate(std, slack, rows=16, blocks=64, trials=50):
    tot=0; skipped=0
    for t in range(trials):
        x = torch.randn(rows, blocks, 64)*std
        bm = x.max(-1).values  # rows x blocks
        run = torch.full((rows,), -float('inf'))
        for b in range(blocks):
            ex = bm[:,b] > run + slack
            if not ex.any(): skipped += 1
            run = torch.where(ex, bm[:,b], run)
            tot += 1
    return skipped/tot
for std in (1.44, 3.0):
    for slack in (0.0, 0.807, 2.0, 3.0, 4.0, 8.0):
        print(std, slack, round(skip_rate(std, slack),3))
