from bastion.cli.app import main

main()
