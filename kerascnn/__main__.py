from kerascnn.cli import main

main()
