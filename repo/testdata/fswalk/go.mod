module example.com/fswalk

go 1.26.0

require github.com/sandsnap/sandsnap v0.0.0-00010101000000-000000000000

replace github.com/sandsnap/sandsnap => ../../..
