module github.com/sluicehq/sluice/bench

go 1.26.0

require github.com/sluicehq/sluice v0.0.0

require github.com/tmaxmax/go-sse v0.12.0

replace github.com/sluicehq/sluice => ../
