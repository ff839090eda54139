from glass_cli.cli import main

main()
